"""Regenerate docs/readme_result.jpg: the README quick start's settings, content | style | result.

    python docs/make_readme_figure.py
"""

from pathlib import Path

import numpy as np

import stylekeras
from stylekeras.image_io import resize_longer_side

ROOT = Path(__file__).resolve().parents[1]
CONTENT, STYLE = ROOT / "examples/astronaut.jpg", ROOT / "examples/starry_night.jpg"
SIZE = 256  # the README quick-start command: default weights and steps


def main() -> None:
    result = stylekeras.transfer(CONTENT, STYLE, size=SIZE)
    height = result.image.shape[0]
    panels = [stylekeras.load_image(CONTENT, SIZE), stylekeras.load_image(STYLE, SIZE), result.image]
    # Scale each panel to the result's height so the three sit side by side.
    panels = [resize_longer_side(p, round(height * max(p.shape[:2]) / p.shape[0])) for p in panels]
    gap = np.ones((height, 4, 3), np.float32)
    figure = np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1)
    path = stylekeras.save_image(figure, ROOT / "docs/readme_result.jpg")
    print(f"wrote {path} ({result.steps_done} steps in {result.seconds:.0f} s on {result.device}, weights: {result.weights})")


if __name__ == "__main__":
    main()
