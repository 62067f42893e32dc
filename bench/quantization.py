"""What the 8-bit VGG19 (`--weights imagenet-q8`) costs: its sensitivity to fewer quantization levels.

The original float32 kernels are not here to compare with, so the 256-level tables are re-quantized to
fewer levels (neighbouring values merged) and the feature maps and a stylized image are compared with the
8-bit ones. Quantization error roughly halves with every extra bit, so the error of
8 bits against float32 is about half that of 7 bits against 8.

    python bench/quantization.py            # feature errors, then stylized images (about 5 minutes)
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

import stylekeras
from stylekeras.defaults import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS
from stylekeras.features import build_feature_model
from stylekeras.torch_legacy import load_tensors
from stylekeras.weights import QUANTIZED_VGG19_PATH, resolve_weights

sys.path.insert(0, str(Path(__file__).parent))
from quality import scores  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONTENT, STYLE = ROOT / "examples/astronaut.jpg", ROOT / "examples/starry_night.jpg"
LEVELS = (128, 64, 16)
LAYERS = tuple(dict.fromkeys(DEFAULT_STYLE_LAYERS + DEFAULT_CONTENT_LAYERS))


def requantized(levels: int) -> stylekeras.VGGWeights:
    """The 8-bit weights with each layer's 256 sorted values merged, 256 / `levels` neighbours at a time,
    into their usage-weighted mean: `levels` values per layer, as a coarser k-means would give."""
    tensors = load_tensors(QUANTIZED_VGG19_PATH)
    base = resolve_weights("imagenet-q8")
    group = 256 // levels
    kernels = {}
    for name, (_, bias) in base.kernels.items():
        codes, table = tensors[f"{name}_W_q"], tensors[f"{name}_W_table"].astype(np.float64)
        counts = np.bincount(codes.ravel(), minlength=256).astype(np.float64) + 1e-12
        merged = (np.add.reduceat(counts * table, np.arange(0, 256, group))
                  / np.add.reduceat(counts, np.arange(0, 256, group)))
        new_table = np.repeat(merged, group).astype(np.float32)
        kernels[name] = [new_table[codes].transpose(2, 3, 1, 0), bias]
    return replace(base, source=f"imagenet-q8 merged to {levels} levels", kernels=kernels)


def feature_errors() -> None:
    images = np.stack([stylekeras.load_image(path, 256)[:160, :160] for path in (CONTENT, STYLE)])
    reference = build_feature_model(resolve_weights("imagenet-q8"), LAYERS)(images)
    print("relative error of feature maps against the 8-bit weights (‖ΔF‖ / ‖F‖):")
    print("levels | " + " | ".join(LAYERS))
    for levels in LEVELS:
        features = build_feature_model(requantized(levels), LAYERS)(images)
        errors = [float(np.linalg.norm(features[n] - reference[n]) / np.linalg.norm(reference[n])) for n in LAYERS]
        print(f"{levels} | " + " | ".join(f"{error:.4f}" for error in errors), flush=True)


def image_differences(size: int = 256, steps: int = 60) -> None:
    out = ROOT / "bench/out/quantization"
    out.mkdir(parents=True, exist_ok=True)
    print(f"\nstylized {size} px, {steps} steps, defaults otherwise: difference from the 8-bit result")
    reference = None
    for levels in (256, *LEVELS):
        weights = resolve_weights("imagenet-q8") if levels == 256 else requantized(levels)
        image = stylekeras.Stylizer(weights=weights).transfer(CONTENT, STYLE, size=size, steps=steps).image
        path = stylekeras.save_image(image, out / f"levels_{levels}.png")
        measured = scores(str(CONTENT), str(STYLE), str(path))
        if reference is None:
            reference = image
        difference = np.abs(image - reference)
        print(f"{levels} levels: mean |Δpixel| {difference.mean() * 255:.2f}/255, max {difference.max() * 255:.0f}/255; "
              f"style {measured['style_progress']:.3f}, structure {measured['structure']:.3f}", flush=True)


if __name__ == "__main__":
    feature_errors()
    image_differences()
