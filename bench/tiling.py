"""How much context a tile needs: the tiled gradient against the whole-image gradient, per margin.

    python bench/tiling.py [SIZE] [TILE]     # default 512 px, tiles of 128 px; about 2 minutes

At a random image between content and noise, prints for each --tile-margin the correlation and relative
error of the tiled gradient (random grid offset) against the exact whole-image gradient, the relative
error of the loss, and the seconds one tiled loss-and-gradient takes.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import stylekeras  # noqa: E402
from stylekeras import losses, objective, stylize  # noqa: E402
from stylekeras.tiling import TiledObjective  # noqa: E402

LOSS_WEIGHTS = stylize.TransferSettings().loss_weights(*objective.REFERENCE_SHAPE)


def main(size: int = 512, tile: int = 128) -> None:
    stylizer = stylekeras.Stylizer(weights="hed")
    content = stylekeras.load_image(ROOT / "examples/astronaut.jpg", size)
    style = stylekeras.load_image(ROOT / "examples/starry_night.jpg", size)
    targets = stylizer.targets(content, [style])
    noise = np.random.default_rng(0).uniform(0, 1, content.shape).astype(np.float32)
    image = tf.Variable((0.7 * content + 0.3 * noise)[None])
    with tf.GradientTape() as tape:
        parts = stylizer.loss_parts(image, targets)
        total = losses.total_loss(parts["content"], parts["style"], parts["tv"], *LOSS_WEIGHTS)[0]
    exact = tape.gradient(total, image).numpy().ravel()
    print(f"{size} px, tiles of {tile} px: loss {float(total):.4g}")
    print("| margin (px) | gradient correlation | gradient relative error | loss relative error | seconds |")
    print("| --- | --- | --- | --- | --- |")
    for margin in (0, 16, 32, 64, 128):
        tiling = stylizer.tiling(stylize.TransferSettings(tile=tile, tile_margin=margin))
        objective = TiledObjective(stylizer.model, tiling, image, targets, LOSS_WEIGHTS)
        tiles = tiling.grid(size, size, tiling.random_offset(0, 1))
        objective.loss_and_gradient(tiles)  # trace
        started = time.perf_counter()
        tiled_parts, gradient = objective.loss_and_gradient(tiles)
        seconds = time.perf_counter() - started
        gradient = gradient.numpy().ravel()
        correlation = np.corrcoef(gradient, exact)[0, 1]
        error = np.linalg.norm(gradient - exact) / np.linalg.norm(exact)
        loss_error = abs(float(tiled_parts["total"][0]) - float(total)) / float(total)
        print(f"| {margin} | {correlation:.5f} | {error:.4f} | {loss_error:.2e} | {seconds:.1f} |", flush=True)


if __name__ == "__main__":
    main(*map(int, sys.argv[1:]))
