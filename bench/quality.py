"""Network-independent quality measures for a stylized image, used to tune the defaults.

- style_progress: how far the output's local patch statistics moved from the content's toward the
  style's, 1 − SWD(output, style) / SWD(content, style), where SWD is the multi-scale sliced Wasserstein
  distance on 7×7 patches of a Laplacian pyramid (Karras et al. 2018, "Progressive Growing of GANs").
  0 = still the content's statistics, 1 = the style's. Being a ratio, it is only as steady as its
  denominator: where the photo is already near the painting (a small SWD(content, style)), a small change
  of the output moves it far, so `scores` returns both distances too.
- structure: correlation of the blurred gradient magnitudes of output and content (1 = same structure).
- edges (printed, not used for tuning): the output's fine detail (mean |Laplacian| of its luminance) in
  its outer `EDGE_BAND` px over that in the rest. About 1 when the texture runs evenly to the edges; well
  above 1 for a frame of dots along them, well below 1 for a soft, untextured frame.

    python bench/quality.py CONTENT STYLE OUTPUT [OUTPUT …] [--seeds 5]
"""

from __future__ import annotations

import argparse

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


def sliced_wasserstein_bands(a: Image.Image, b: Image.Image, seed: int = 0) -> list[float]:
    """The sliced Wasserstein distance between 7×7 patch sets of each pyramid level, finest first (the
    coarsest is the picture at 1/8 of its size: where its regions and their colours lie); SWD is their mean."""
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
        distances.append(float(np.abs(projected_a - projected_b).mean()))
    return distances


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


def scores(content_path: str, style_path: str, output_path: str, view_size: int | None = None,
           seed: int = 0) -> dict:
    """Both measures of one output, and the distances (SWD, and per band) the style measure is the ratio of;
    with `view_size`, of the output downscaled to that longer side (photo and painting are always measured
    at the output's size), to compare outputs of different sizes as one picture seen at one size. `seed`
    picks the patches and projections: the benchmarks use 0; others show the measure's own noise."""
    output = Image.open(output_path).convert("RGB")
    if view_size is not None:
        output.thumbnail((view_size, view_size), Image.LANCZOS)
    content = Image.open(content_path).convert("RGB").resize(output.size, Image.LANCZOS)
    style = Image.open(style_path).convert("RGB")
    style.thumbnail((max(output.size),) * 2, Image.LANCZOS)
    photo_bands = sliced_wasserstein_bands(content, style, seed)
    result_bands = sliced_wasserstein_bands(output, style, seed)
    return {
        "style_progress": 1.0 - float(np.mean(result_bands)) / float(np.mean(photo_bands)),
        "structure": structure(output, content),
        "photo_distance": float(np.mean(photo_bands)),  # SWD(photo, painting): where the result started
        "result_distance": float(np.mean(result_bands)),  # SWD(result, painting): how far it still is
        "photo_bands": photo_bands,
        "result_bands": result_bands,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("content")
    parser.add_argument("style")
    parser.add_argument("outputs", nargs="+")
    parser.add_argument("--seeds", type=int, default=1,
                        help="measure with this many seeds (patches and projections) and show the spread")
    args = parser.parse_args()
    for output_path in args.outputs:
        runs = [scores(args.content, args.style, output_path, seed=seed) for seed in range(args.seeds)]
        measured = runs[0]
        spread = (f" (seeds 0–{args.seeds - 1}: mean {np.mean([run['style_progress'] for run in runs]):.3f}, "
                  f"std {np.std([run['style_progress'] for run in runs]):.3f})") if args.seeds > 1 else ""
        print(f"{output_path}: style_progress {measured['style_progress']:.3f}{spread}  structure "
              f"{measured['structure']:.3f}  edges {edges(Image.open(output_path)):.2f}")
        for name in ("photo", "result"):
            print(f"  {name} to painting: SWD {measured[f'{name}_distance']:.3f}, by band (fine to coarse) "
                  + " ".join(f"{band:.3f}" for band in measured[f"{name}_bands"]))


if __name__ == "__main__":
    main()
