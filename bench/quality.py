"""Network-independent quality measures for a stylized image, used to tune the defaults.

- style_progress: how far the output's local patch statistics moved from the content's toward the
  style's, 1 − SWD(output, style) / SWD(content, style), where SWD is the multi-scale sliced Wasserstein
  distance on 7×7 patches of a Laplacian pyramid (Karras et al. 2018, "Progressive Growing of GANs").
  0 = still the content's statistics, 1 = the style's.
- structure: correlation of the blurred gradient magnitudes of output and content (1 = same structure).
- edges (printed, not used for tuning): the output's fine detail (mean |Laplacian| of its luminance) in
  its outer `EDGE_BAND` px over that in the rest. About 1 when the texture runs evenly to the edges; well
  above 1 for a frame of dots along them, well below 1 for a soft, untextured frame.

    python bench/quality.py CONTENT STYLE OUTPUT [OUTPUT …]
"""

from __future__ import annotations

import sys

import numpy as np
from PIL import Image, ImageFilter

PATCH = 7
PATCHES_PER_LEVEL = 4096
PROJECTIONS = 256
EDGE_BAND = 4


def _gray_pyramid(image: Image.Image, levels: int = 4) -> list[np.ndarray]:
    """Laplacian pyramid of an RGB image: band-pass levels, coarsest last (each H×W×3 float)."""
    bands, current = [], np.asarray(image, dtype=np.float32) / 255.0
    for _ in range(levels - 1):
        small = Image.fromarray((current * 255).clip(0, 255).astype(np.uint8)).resize(
            (max(1, current.shape[1] // 2), max(1, current.shape[0] // 2)), Image.BILINEAR)
        up = np.asarray(small.resize((current.shape[1], current.shape[0]), Image.BILINEAR), np.float32) / 255.0
        bands.append(current - up)
        current = np.asarray(small, np.float32) / 255.0
    bands.append(current)
    return bands


def _patches(level: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    height, width = level.shape[:2]
    ys = rng.integers(0, height - PATCH + 1, PATCHES_PER_LEVEL)
    xs = rng.integers(0, width - PATCH + 1, PATCHES_PER_LEVEL)
    offsets = np.arange(PATCH)
    patches = level[ys[:, None, None] + offsets[None, :, None], xs[:, None, None] + offsets[None, None, :]]
    return patches.reshape(PATCHES_PER_LEVEL, -1)


def sliced_wasserstein(a: Image.Image, b: Image.Image, seed: int = 0) -> float:
    """Mean over pyramid levels of the sliced Wasserstein distance between 7×7 patch sets."""
    rng = np.random.default_rng(seed)
    distances = []
    for level_a, level_b in zip(_gray_pyramid(a), _gray_pyramid(b)):
        if min(level_a.shape[:2] + level_b.shape[:2]) < PATCH:
            break
        pa, pb = _patches(level_a, rng), _patches(level_b, rng)
        # Karras et al. normalise each level's patches by their joint per-channel mean and deviation.
        both = np.concatenate([pa, pb])
        pa, pb = (pa - both.mean(0)) / (both.std(0) + 1e-8), (pb - both.mean(0)) / (both.std(0) + 1e-8)
        directions = rng.normal(size=(pa.shape[1], PROJECTIONS))
        directions /= np.linalg.norm(directions, axis=0, keepdims=True)
        projected_a, projected_b = np.sort(pa @ directions, axis=0), np.sort(pb @ directions, axis=0)
        distances.append(np.abs(projected_a - projected_b).mean())
    return float(np.mean(distances))


def structure(output: Image.Image, content: Image.Image) -> float:
    """Pearson correlation of blurred gradient magnitudes of the two images (same size)."""
    def gradient_magnitude(image):
        gray = np.asarray(image.convert("L").filter(ImageFilter.GaussianBlur(2)), np.float32)
        gy, gx = np.gradient(gray)
        return np.hypot(gx, gy).ravel()
    return float(np.corrcoef(gradient_magnitude(output), gradient_magnitude(content))[0, 1])


def edges(output: Image.Image) -> float:
    """Mean |Laplacian| of the luminance in the outer `EDGE_BAND` px over that in the rest of the image."""
    gray = np.asarray(output.convert("L"), np.float64) / 255.0
    laplacian = np.abs(4 * gray[1:-1, 1:-1] - gray[:-2, 1:-1] - gray[2:, 1:-1] - gray[1:-1, :-2] - gray[1:-1, 2:])
    band = np.ones(laplacian.shape, bool)
    band[EDGE_BAND - 1:-(EDGE_BAND - 1), EDGE_BAND - 1:-(EDGE_BAND - 1)] = False  # the Laplacian starts 1 px in
    return float(laplacian[band].mean() / laplacian[~band].mean())


def scores(content_path: str, style_path: str, output_path: str, view_size: int | None = None) -> dict[str, float]:
    """Both measures of one output; with `view_size`, of the output downscaled to that longer side (photo and
    painting are always measured at the output's size), to compare outputs of different sizes as one
    picture seen at one size."""
    output = Image.open(output_path).convert("RGB")
    if view_size is not None:
        output.thumbnail((view_size, view_size), Image.LANCZOS)
    content = Image.open(content_path).convert("RGB").resize(output.size, Image.LANCZOS)
    style = Image.open(style_path).convert("RGB")
    style.thumbnail((max(output.size),) * 2, Image.LANCZOS)
    baseline = sliced_wasserstein(content, style)
    return {
        "style_progress": 1.0 - sliced_wasserstein(output, style) / baseline,
        "structure": structure(output, content),
    }


if __name__ == "__main__":
    content_path, style_path, *outputs = sys.argv[1:]
    for output_path in outputs:
        measured = scores(content_path, style_path, output_path)
        print(f"{output_path}: style_progress {measured['style_progress']:.3f}  structure {measured['structure']:.3f}  "
              f"edges {edges(Image.open(output_path)):.2f}")
