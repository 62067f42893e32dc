"""Regenerate docs/gallery.md and docs/gallery/*.jpg: one real result per control, default weights.

    python docs/make_gallery.py            # about 30 minutes on a 2-core CPU
    python docs/make_gallery.py paper      # only the named entries; the page keeps the other rows

Every picture is the examples' astronaut photo at 256 px with the defaults except the control shown (in
float32, so the pictures do not depend on the machine's bfloat16 hardware; the `mixed` row shows
bfloat16); the page lists the
exact call and the final losses next to each.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

import stylekeras
from stylekeras import stylize
from stylekeras.features import bfloat16_is_fast, speed_flags

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from benchmark import cpu_model  # noqa: E402  (bench/ is not a package)

OUT = ROOT / "docs/gallery"
CONTENT = ROOT / "examples/astronaut.jpg"
STARRY, MATISSE = ROOT / "examples/starry_night.jpg", ROOT / "examples/woman_with_hat.jpg"
BASE = {"size": 256}
NEURAL_STYLE = stylekeras.preset("neural-style")


def half_masks() -> list[np.ndarray]:
    """Left half for the first style, right half for the second (soft 16 px seam)."""
    ramp = np.clip((np.arange(256) - 120) / 16, 0, 1).astype(np.float32)
    right = np.repeat(np.tile(ramp, (256, 1))[..., None], 3, axis=-1)
    return [1.0 - right, right]


# (file stem, caption, Stylizer options, transfer options, styles)
CONTROLS = [
    ("baseline", "defaults (L-BFGS, 60 steps, from the photo recoloured halfway to the painting's colour "
     "distribution)", {}, {}, [STARRY]),
    ("palette_init", "`init=\"palette\"` (`--init palette`): from the photo in the painting's colour mean and "
     "covariance, the default before the transport start", {}, {"init": "palette"}, [STARRY]),
    ("content_init", "`init=\"content\"` (`--init content`): from the photo as it is, the default before the "
     "palette start", {}, {"init": "content"}, [STARRY]),
    ("init_image", "`init_image=STARRY` (`--init-image starry_night.jpg`): from the painting itself, resized to "
     "the photo's shape (neural-style's `-init_image`): in 60 steps the astronaut comes out of the painting, "
     "faintly", {}, {"init_image": STARRY}, [STARRY]),
    ("adam", "`optimizer=\"adam\", steps=300` (`--optimizer adam --steps 300`)", {},
     {"optimizer": "adam", "steps": 300}, [STARRY]),
    ("multiscale", "`scales=2, start_size=128` (`--scales 2 --start-size 128`): 128 px for 60 steps, then 256 px "
     "for 30 (by default the first scale is at least 256 px, so 256 px outputs have one)", {},
     {"scales": 2, "start_size": 128}, [STARRY]),
    ("average", "`average=0.99` (`--average 0.99`): moving average of the iterates", {}, {"average": 0.99}, [STARRY]),
    ("avgpool", "`pooling=\"avg\"` (`--pooling avg`)", {"pooling": "avg"}, {}, [STARRY]),
    ("reflect", "`padding=\"reflect\"` (`--padding reflect`)", {"padding": "reflect"}, {}, [STARRY]),
    ("blend", "two styles, `style_blend=(0.5, 0.5)` (`STARRY MATISSE --style-blend 0.5,0.5`)", {},
     {"style_blend": (0.5, 0.5)}, [STARRY, MATISSE]),
    ("style_scale", "`style_scale=0.5` (`--style-scale 0.5`): finer brush strokes", {}, {"style_scale": 0.5}, [STARRY]),
    ("shallow_layers", "`style_layer_weights=(4, 2, 1, 0)` (`--style-layer-weights 4,2,1,0`)",
     {"style_layer_weights": (4, 2, 1, 0)}, {}, [STARRY]),
    ("paper_layers", "the paper's five style layers, `style_layers=(…, \"block5_conv1\")` (`--style-layers "
     "block1_conv1,block2_conv1,block3_conv1,block4_conv1,block5_conv1`)",
     {"style_layers": ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")}, {}, [STARRY]),
    ("paper", "`style_normalization=\"paper\"` (`--style-normalization paper`): Gatys et al.'s E_l as written, "
     "β = 3e4", {}, {"style_normalization": "paper"}, [STARRY]),
    ("luminance", "`preserve_color=\"luminance\"` (`--preserve-color luminance`)", {},
     {"preserve_color": "luminance"}, [STARRY]),
    ("histogram", "`preserve_color=\"histogram\"` (`--preserve-color histogram`)", {},
     {"preserve_color": "histogram"}, [STARRY]),
    ("masks", "`style_masks=[left, right]` (`--style-mask left.png --style-mask right.png`): Starry Night left, "
     "Matisse right", {}, {"masks": True}, [STARRY, MATISSE]),
    ("mixed", "`precision=\"mixed\"` (`--precision mixed`): bfloat16 convolutions", {"precision": "mixed"},
     {}, [STARRY]),
    ("tiled", "`tile=128` (`--tile 128`): 192 px windows with a random grid offset per step — no seams", {},
     {"tile": 128}, [STARRY]),
    ("bold", "`**stylekeras.preset(\"bold\")` (`--config bold`): the style layers weighted toward the deepest, "
     "`style_layer_weights=(0.25, 0.5, 1, 2)` — larger strokes", stylekeras.preset("bold"), {}, [STARRY]),
    ("neural_style", "`**stylekeras.preset(\"neural-style\")` (`--config neural-style`): jcjohnson/neural-style's "
     "default run — the paper's five style layers, its loss weights, from noise, 1000 L-BFGS steps",
     {key: value for key, value in NEURAL_STYLE.items() if key in stylize.NETWORK_OPTIONS},
     {key: value for key, value in NEURAL_STYLE.items() if key not in (*stylize.NETWORK_OPTIONS, *BASE)}, [STARRY]),
]


def main(only: list[str]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    masks = half_masks()
    for index, mask in enumerate(masks):
        stylekeras.save_image(mask, OUT / f"mask_{'left' if index == 0 else 'right'}.png")
    page_path = ROOT / "docs/gallery.md"
    previous = {line.split("](gallery/")[1].split(".jpg")[0]: line for line in
                (page_path.read_text().splitlines() if page_path.exists() else []) if "](gallery/" in line}
    rows = []
    stylizers = {(): stylekeras.Stylizer(precision="float32")}
    weights = stylizers[()].weights.description.split(";")[0]
    for stem, caption, model_options, options, styles in CONTROLS:
        if only and stem not in only:  # keep the page's row for it, if it has one
            rows.extend([previous[stem]] if stem in previous else [])
            continue
        key = tuple(sorted(model_options.items()))
        if key not in stylizers:
            stylizers[key] = stylekeras.Stylizer(**{"precision": "float32", **model_options})
        options = dict(options)
        style_masks = masks if options.pop("masks", False) else None
        started = time.perf_counter()
        result = stylizers[key].transfer(CONTENT, styles, style_masks=style_masks, **BASE, **options)
        stylekeras.save_image(result.image, OUT / f"{stem}.jpg")
        history = result.history
        rows.append(f"| ![{stem}](gallery/{stem}.jpg) | {caption}<br>final loss {history['total'][-1]:.3g} "
                    f"(content {history['content'][-1]:.3g}, style {history['style'][-1]:.3g}); "
                    f"{time.perf_counter() - started:.0f} s |")
        print(f"{stem}: {time.perf_counter() - started:.0f} s", flush=True)
    page = [
        "# Gallery",
        "",
        f"Real results with the default weights, {weights}, made by `python docs/make_gallery.py`: the",
        "astronaut photo at 256 px, default settings except the control named. Styles: van Gogh's",
        "*The Starry Night* and, where named, Matisse's *Woman with a Hat*; float32 but for the `mixed` row.",
        f"Times are on a 2-core {cpu_model() or 'CPU'} with flags {speed_flags()} "
        f"({'with' if bfloat16_is_fast() else 'without'} "
        f"bfloat16 hardware, `--precision mixed` is the {'fast' if bfloat16_is_fast() else 'slow'} row).",
        "",
        "| result | control |",
        "| --- | --- |",
        *rows,
        "",
    ]
    page_path.write_text("\n".join(page))


if __name__ == "__main__":
    main(sys.argv[1:])
