"""The quality benchmark: today's defaults on 12 photo × painting pairs, scored and written to QUALITY.md.

    python bench/quality_benchmark.py                       # 12 pairs + 16 + 12 held out at 512 px (QUALITY.md, sheet)
    python bench/quality_benchmark.py --sizes 256,512,1024  # also: does the look hold across sizes?
    python bench/quality_benchmark.py --pairs tubingen-starry,astronaut-wave --size 256   # a quick look
    python bench/quality_benchmark.py --set scales=1 --no-report   # a lever: the defaults with one change
    python bench/quality_benchmark.py --set weights=hed             # the defaults on other weights (VGG16)
    python bench/quality_benchmark.py --preset bold                 # a preset (the CLI's --config NAME) instead
    python bench/quality_benchmark.py --sample-images               # photos and styles from other packages

Photos and paintings come from examples/ and ../shared/images/, and one photo is a frame of
../shared/video/fox.mp4 (read here, never by the package or its tests; the frame is decoded once, with the
`video` extra, into bench/out/quality/). Every pair runs `stylekeras.transfer(photo, painting, size=SIZE)`
with the library's defaults and the default weights ("auto"); results go to bench/out/quality/PRECISION/ (and are reused by later runs
with the same library source, weights, style layers, precision and settings, so `--sizes` can be added
afterwards; any change to stylekeras/ makes them again) and are scored with bench/quality.py's measures
(style progress, structure).
jcjohnson/neural-style's published tubingen × starry result is scored the same way, beside ours, and so is
neural-style's default run on every pair where bench/neural_style_reference.py has made one. Sixteen pairs
with photos no setting was chosen on are reported apart (`--held-out`), and twelve with three styles no
setting was chosen on, which bench/procedural_styles.py makes into bench/out/quality/ (`--held-out-styles`).
`--set NAME=VALUE` changes one `TransferSettings` field or `Stylizer` option (results go to a folder of their
own), to measure a lever against the defaults on the same pairs (`--set content_layers=block4_conv2 --set
content_weight=1`: the paper's content layer; `--set weights=hed`: the defaults on hed's VGG16); `--preset
NAME` runs a shipped preset the same way. Text under "## Notes" in QUALITY.md is kept when the file is
rewritten.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

import stylekeras
from stylekeras import defaults, features, stylize
from stylekeras.errors import StyleKerasError

sys.path.insert(0, str(Path(__file__).parent))
from benchmark import cpu_model  # noqa: E402
from procedural_styles import write_styles  # noqa: E402
from quality import scores  # noqa: E402
from sample_images import SAMPLE_PHOTOS, SAMPLE_STYLES, fetch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "images"
OUT = ROOT / "bench" / "out" / "quality"
# A still from the video clip, 3 s in: a fox on a bed against a flat wall, a kind of photo no other pair has.
FOX_VIDEO, FOX_SECONDS = ROOT.parent / "shared" / "video" / "fox.mp4", 3.0
REFERENCE = SHARED / "references" / "tubingen_starry_jcjohnson.png"
NEURAL_STYLE = ROOT / "bench" / "out" / "neural_style"  # bench/neural_style_reference.py's images
# Its scores, kept in the repository: a pair costs 35–60 minutes to rerun.
NEURAL_STYLE_RECORDS = ROOT / "bench" / "records" / "neural_style"

# The full-size originals (examples/ holds copies downscaled to 512 px).
PHOTOS = {name: SHARED / file for name, file in
          (("tubingen", "tubingen.jpg"), ("astronaut", "astronaut.png"), ("chelsea", "chelsea.png"), ("stata", "stata.jpg"),
              ("chicago", "chicago.jpg"))} | {
    name: ROOT / "examples" / f"{name}.jpg" for name in ("coffee", "rocket")} | {"fox": OUT / "fox.png"}
# One painting of each kind (swirly, portrait, seascape, flat colour), then the held-out styles made here.
PAINTINGS = {name: SHARED / file for name, file in
             (("starry", "starry_night.jpg"), ("matisse", "woman-with-hat-matisse.jpg"), ("wave", "wave.jpg"),
              ("udnie", "udnie.jpg"))} | {name: OUT / f"{name}.png" for name in ("glass", "hatching", "pointillism")}
FOUR_PAINTINGS = ("starry", "matisse", "wave", "udnie")
# Each photo with three paintings and each painting with three photos.
PAIRS = ("tubingen-starry", "stata-wave", "stata-matisse", "astronaut-starry", "astronaut-matisse", "astronaut-wave",
         "chelsea-starry", "chelsea-matisse", "chelsea-udnie", "tubingen-wave", "tubingen-udnie", "stata-udnie")
# Photos no default was chosen on (a street, a still life, thin towers against a night sky, an animal
# against a flat wall), with every painting: how the defaults hold on pictures not tuned on.
HELD_OUT_PAIRS = tuple(f"{photo}-{painting}" for photo in ("chicago", "coffee", "rocket", "fox")
                       for painting in FOUR_PAINTINGS)
# Photos that may be shipped (public domain / CC0): only their results go into the committed contact sheet.
SHIPPABLE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")
# Styles no default was chosen on (stained glass, pencil hatching, pointillism: bench/procedural_styles.py),
# with the photos that may be shipped, so the committed contact sheet shows them all.
HELD_OUT_STYLE_PAIRS = tuple(f"{photo}-{style}" for photo in SHIPPABLE_PHOTOS
                             for style in ("glass", "hatching", "pointillism"))
# Every photo with every painting of at least 800 px on its longer side, so that 1024 px is not mostly
# upsampling: the four benchmark pairs that have them first, then the other six.
SIZE_PAIRS = ("tubingen-starry", "stata-wave", "stata-matisse", "tubingen-wave", "tubingen-matisse", "stata-starry",
              "tubingen-glass", "tubingen-hatching", "stata-glass", "stata-hatching", "tubingen-pointillism",
              "stata-pointillism")
# "The style measure at 256, 512 and 1024 px within ±0.05 of each other" (issue #12): at most this spread.
SIZE_SPREAD_GOAL = 0.05
# Other packages' sample photos with every painting, and the cat and the pagoda with their textures and a
# photograph as styles (bench/sample_images.py fetches them): held out from every default, none shipped.
SAMPLE_PAIRS = (
    tuple(f"{photo}-{painting}" for photo in SAMPLE_PHOTOS for painting in FOUR_PAINTINGS)
    + tuple(f"{photo}-{style}" for photo in ("chelsea", "china") for style in SAMPLE_STYLES))
# The `Stylizer` options `--set` can change: the network's layers and the weights (`--set weights=hed`).
STYLIZER_OPTIONS = (*stylize.NETWORK_OPTIONS, "weights")


def extract_fox() -> None:
    """Write PHOTOS["fox"], the clip's frame at FOX_SECONDS as the library reads it, unless it is there."""
    if PHOTOS["fox"].exists() or not FOX_VIDEO.exists():
        return
    from stylekeras.video import VideoSettings, read_clip  # needs the video extra (PyAV)

    clip = read_clip(FOX_VIDEO, None, VideoSettings(start=FOX_SECONDS, max_frames=1))
    (frame,) = clip.frames()
    PHOTOS["fox"].parent.mkdir(parents=True, exist_ok=True)
    stylekeras.save_image(frame, PHOTOS["fox"])


@functools.cache
def library_digest() -> str:
    """A digest of stylekeras's source as this run found it: a stored result is reused only if the code that
    made it is the same."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "stylekeras").rglob("*.py")):
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def stylize_pair(stylizer: stylekeras.Stylizer, pair: str, size: int, compute: bool = True,
                 changes: dict | None = None, preset: str | None = None, network: dict | None = None) -> dict | None:
    """Stylize and score one pair with the defaults (and `changes` to them, e.g. a `preset`'s), or reuse the
    result of an earlier run with the same weights and settings (without `compute`, None when there is none).
    `network` names the `Stylizer` options that `--set` changed, which `stylizer` was built with."""
    photo, painting = pair.split("-")
    changes = changes or {}
    departures = {**(network or {}), **changes}
    folder = OUT / stylizer.precision  # one folder per precision, and per set of changes
    folder = folder / preset if preset else folder
    folder = folder / "-".join(f"{name}={value}" for name, value in departures.items()) if departures else folder
    folder.mkdir(parents=True, exist_ok=True)
    path, record = folder / f"{pair}_{size}.png", folder / f"{pair}_{size}.json"
    identity = {"library": library_digest(), "weights": stylizer.weights.description, "precision": stylizer.precision,
                "layers": stylizer.style_layer_weights, "content_layers": list(stylizer.content_layers),
                "settings": repr(stylize.TransferSettings(**changes))}
    if path.exists() and record.exists() and json.loads(record.read_text())["identity"] == identity:
        row = json.loads(record.read_text())["row"]
    elif not compute:
        return None
    else:
        started = time.perf_counter()
        result = stylizer.transfer(PHOTOS[photo], PAINTINGS[painting], size=size, **changes)
        seconds = time.perf_counter() - started
        stylekeras.save_image(result.image, path)
        row = {"pair": pair, "size": size, "seconds": seconds}
        record.write_text(json.dumps({"identity": identity, "row": row}))
    # Scored from the image every time (about a second), so a stored result is measured as a new one is.
    row = {**row, **scores(str(PHOTOS[photo]), str(PAINTINGS[painting]), str(path))}
    print(f"{pair} {size} px: style {row['style_progress']:.3f} structure {row['structure']:.3f} ({row['seconds']:.0f} s)",
          flush=True)
    return {**row, "path": path}


def contact_sheet(rows: list[dict], path: Path, thumb: int = 192) -> Path:
    """Photo | painting | result per pair, one pair per row, two pairs side by side."""
    def tile(image_path: Path) -> Image.Image:
        image = Image.open(image_path).convert("RGB")
        image.thumbnail((thumb, thumb), Image.LANCZOS)
        canvas = Image.new("RGB", (thumb, thumb), "white")
        canvas.paste(image, ((thumb - image.width) // 2, (thumb - image.height) // 2))
        return canvas

    label = 16
    columns = 2
    lines = -(-len(rows) // columns)
    sheet = Image.new("RGB", (columns * 3 * thumb + (columns - 1) * 12, lines * (thumb + label)), "white")
    draw = ImageDraw.Draw(sheet)
    for index, row in enumerate(rows):
        photo, painting = row["pair"].split("-")
        x, y = (index % columns) * (3 * thumb + 12), (index // columns) * (thumb + label)
        for offset, image_path in enumerate((PHOTOS[photo], PAINTINGS[painting], row["path"])):
            sheet.paste(tile(image_path), (x + offset * thumb, y + label))
        draw.text((x + 2, y + 2), f"{row['pair']}: style {row['style_progress']:.2f}, structure {row['structure']:.2f}",
                  fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, quality=88)
    return path


def neural_style_path(pair: str, size: int) -> Path:
    """Where bench/neural_style_reference.py keeps its record of a pair."""
    return NEURAL_STYLE_RECORDS / f"{pair}_{size}.json"


def neural_style_record(pair: str, size: int, weights: str) -> dict | None:
    """jcjohnson/neural-style's default run on the pair — its snapshots, scored, the last being the result —
    when bench/neural_style_reference.py has made it with `weights` (a `VGGWeights.description`)."""
    path = neural_style_path(pair, size)
    record = json.loads(path.read_text()) if path.exists() else None
    return record if record and record["weights"] == weights else None


def _score_table(rows: list[dict], weights: str) -> list[str]:
    """Ours per pair, and beside it neural-style's default run where bench/neural_style_reference.py made one."""
    records = {row["pair"]: neural_style_record(row["pair"], row["size"], weights) for row in rows}
    references = {pair: record and record["snapshots"][-1] for pair, record in records.items()}
    lines = ["| pair | style | structure | distance to the painting: photo → result | seconds "
             "| neural-style: style / structure |", "| --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        reference = references[row["pair"]]
        theirs = f"{reference['style_progress']:.3f} / {reference['structure']:.3f}" if reference else ""
        lines.append(f"| {row['pair']} | {row['style_progress']:.3f} | {row['structure']:.3f} "
                     f"| {row['photo_distance']:.3f} → {row['result_distance']:.3f} | {row['seconds']:.0f} | {theirs} |")
    if rows:
        style = np.array([row["style_progress"] for row in rows])
        structure = np.array([row["structure"] for row in rows])
        compared = [(row, references[row["pair"]]) for row in rows if references[row["pair"]]]
        theirs = (f"{np.mean([ref['style_progress'] for _, ref in compared]):.3f} / "
                  f"{np.mean([ref['structure'] for _, ref in compared]):.3f} (ours on these {len(compared)}: "
                  f"{np.mean([row['style_progress'] for row, _ in compared]):.3f} / "
                  f"{np.mean([row['structure'] for row, _ in compared]):.3f})") if compared else ""
        distance = np.array([row["result_distance"] for row in rows])
        lines.append(f"| **mean** (min) | **{style.mean():.3f}** ({style.min():.3f}) | **{structure.mean():.3f}** "
                     f"({structure.min():.3f}) | {np.mean([row['photo_distance'] for row in rows]):.3f} → "
                     f"**{distance.mean():.3f}** (max {distance.max():.3f}) "
                     f"| {np.mean([row['seconds'] for row in rows]):.0f} | {theirs} |")
    return lines


def write_report(rows: list[dict], held_out_rows: list[dict], held_out_style_rows: list[dict], size_rows: list[dict],
                 size: int, weights: str, precision: str, reference: dict) -> Path:
    path = ROOT / "QUALITY.md"
    notes = ""
    if path.exists():
        found = re.search(r"^## Notes\n.*", path.read_text(), re.S | re.M)
        notes = found.group(0) if found else ""
    defaults = stylize.TransferSettings()
    lines = [
        "# Quality",
        "",
        f"Made by `python bench/quality_benchmark.py` on {time.strftime('%Y-%m-%d')} ({cpu_model() or 'CPU'}, "
        f"flags: {features.speed_flags()}). Weights: {weights}; precision {precision}. Every pair uses the library's "
        f"defaults at {size} px: "
        f"scales of {', '.join(map(str, defaults.sizes(size)))} px with "
        f"{', '.join(map(str, defaults.scale_steps(size)))} steps, optimizer {defaults.optimizer}, α = "
        f"{defaults.content_weight:g}, β = {defaults.style_weight:g}, γ = {defaults.tv_weight:g}, init "
        f"{defaults.init}.",
        "",
        "Measures (`bench/quality.py`; proxies — look at the pictures too): **style** = how far the result's "
        "7×7 patch statistics on a Laplacian pyramid moved from the photo's to the painting's (sliced Wasserstein "
        "distance; 0 = still the photo, 1 = the painting); **structure** = correlation of blurred gradient "
        "magnitudes of result and photo (1 = same edges). The style measure is 1 − the ratio of the two "
        "distances beside it, the result's to the painting over the photo's: where the photo already starts "
        "near the painting, a small difference in the result moves it far (Notes).",
        "",
        *_score_table(rows, weights),
    ]
    if reference:
        lines += ["", f"jcjohnson/neural-style's published tubingen × starry (512 px, VGG19, 1000 L-BFGS iterations), "
                      f"same measures: style **{reference['style_progress']:.3f}**, structure "
                      f"**{reference['structure']:.3f}**, distance to the painting {reference['photo_distance']:.3f} → "
                      f"{reference['result_distance']:.3f}."]
        if replica := neural_style_record("tubingen-starry", 512, weights):
            replica = replica["snapshots"][-1]
            lines[-1] += (f" The column \"neural-style\" is its default run replicated in PyTorch on each pair "
                          f"(`python bench/neural_style_reference.py`: its losses, loss weights, layers, start from "
                          f"noise and 1000 L-BFGS iterations, with the weights above); on tubingen × starry the "
                          f"replica scores {replica['style_progress']:.3f} / {replica['structure']:.3f}.")
    if held_out_rows:
        lines += ["", "## Held out: photos no default was tuned on", "",
                  "The same defaults on photos not used while choosing any setting — `chicago.jpg` (a city street), "
                  "`examples/coffee.jpg` (a still life), `examples/rocket.jpg` (thin towers against a night sky), "
                  f"`fox.png` (a fox on a bed against a flat wall: the frame {FOX_SECONDS:g} s into the video clip) — "
                  "with each painting.", "", *_score_table(held_out_rows, weights)]
    if held_out_style_rows:
        lines += ["", "## Held out: styles no default was tuned on", "",
                  "The same defaults with three styles made by `bench/procedural_styles.py` after the defaults were "
                  "settled, each of a kind none of the four paintings is: `glass` (stained glass: flat, saturated "
                  "cells between dark lead lines), `hatching` (grey pencil strokes on white paper) and `pointillism` "
                  "(dots of pure colour over the whole canvas, added in the thirty-seventh round).", "",
                  *_score_table(held_out_style_rows, weights)]
    if size_rows:
        sizes = sorted({row["size"] for row in size_rows})
        lines += ["", "## The same settings at every size", "",
                  "Style measure (structure) of the defaults at each size; the look should not depend on `--size`. "
                  f"Measured at the result's own size, then with every result downscaled to {sizes[0]} px, as one "
                  "picture seen at one size: the measure itself shifts with the size it is taken at (see Notes). "
                  "The last column is the spread of the results' distance to the painting, which the style measure "
                  "divides by the photo's."]
        for view_size in (None, sizes[0]):
            lines += ["", f"**{'At its own size' if view_size is None else f'Seen at {view_size} px'}**", "",
                      "| pair | " + " | ".join(f"{s} px" for s in sizes) + " | spread | spread of the distance |",
                      "| --- |" + " --- |" * (len(sizes) + 2)]
            spreads = []
            for pair in dict.fromkeys(row["pair"] for row in size_rows):
                photo, painting = pair.split("-")
                by_size = {row["size"]: row if view_size in (None, row["size"]) else scores(
                    str(PHOTOS[photo]), str(PAINTINGS[painting]), str(row["path"]), view_size)
                    for row in size_rows if row["pair"] == pair}
                cells = [f"{by_size[s]['style_progress']:.3f} ({by_size[s]['structure']:.2f})" if s in by_size else ""
                         for s in sizes]
                values = [row["style_progress"] for row in by_size.values()]
                distances = [row["result_distance"] for row in by_size.values()]
                spreads.append(max(values) - min(values))
                lines.append(f"| {pair} | " + " | ".join(cells) + f" | {spreads[-1]:.3f} "
                             f"| {max(distances) - min(distances):.3f} |")
            lines += ["", f"Style measures within ±{SIZE_SPREAD_GOAL:g} of each other (spread ≤ {SIZE_SPREAD_GOAL:g}): "
                          f"{sum(spread <= SIZE_SPREAD_GOAL for spread in spreads)} of {len(spreads)} pairs."]
    lines += ["", "![photo, painting and result per pair](docs/quality_sheet.jpg)", "",
              "The committed sheet shows the pairs whose photos are public domain or CC0; the full sheet is "
              "bench/out/quality/sheet.jpg.", ""]
    path.write_text("\n".join(lines) + ("\n" + notes if notes else ""))
    return path


def parse_set(assignments: list[str]) -> tuple[dict, dict]:
    """`--set NAME=VALUE` assignments as (changed `TransferSettings` fields, with JSON values or words;
    changed `Stylizer` options, as given: they also name the results' folder). Raises ValueError on a name
    that is neither."""
    changes, network = {}, {}
    for assignment in assignments:
        name, _, value = assignment.partition("=")
        if name in STYLIZER_OPTIONS:
            network[name] = value
        elif name in stylize.TransferSettings.__dataclass_fields__:
            try:
                changes[name] = json.loads(value)
            except json.JSONDecodeError:
                changes[name] = value  # a word: init=noise
        else:
            raise ValueError(f"--set {assignment}: no TransferSettings field or Stylizer option {name!r}")
    return changes, network


def stylizer_option(name: str, value: str) -> str | list:
    """A `--set` value of a `Stylizer` option as the Stylizer takes it: weights by name or path, layers and
    the style layers' weights as comma-separated lists."""
    if name == "weights":
        return value
    return [float(item) if name == "style_layer_weights" else item for item in value.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=defaults.DEFAULT_SIZE)
    parser.add_argument("--pairs", default=",".join(PAIRS))
    parser.add_argument("--sizes", default="", help="comma-separated sizes for the size check (SIZE_PAIRS)")
    parser.add_argument("--size-pairs", default=",".join(SIZE_PAIRS),
                        help="the SIZE_PAIRS to stylize at --sizes; the others are shown where an earlier run left them")
    parser.add_argument("--held-out", default=",".join(HELD_OUT_PAIRS), help="pairs reported apart, as a check on "
                        "pictures the defaults were not tuned on (empty: none)")
    parser.add_argument("--held-out-styles", default=",".join(HELD_OUT_STYLE_PAIRS),
                        help="pairs with styles the defaults were not tuned on, reported apart (empty: none)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="change one TransferSettings field or Stylizer option (content_layers, style_layers, "
                             "style_layer_weights, weights; repeatable); implies --no-report")
    parser.add_argument("--preset", choices=defaults.PRESETS,
                        help="run a shipped preset (stylekeras.preset) instead of the defaults; implies --no-report")
    parser.add_argument("--sample-images", action="store_true",
                        help="also stylize SAMPLE_PAIRS: other packages' sample photos and styles, which "
                             "bench/sample_images.py fetches with pip; implies --no-report")
    parser.add_argument("--precision", default="auto", help="the Stylizer's precision (auto, float32, mixed)")
    parser.add_argument("--no-report", action="store_true", help="print scores only")
    args = parser.parse_args()
    changes = stylekeras.preset(args.preset) if args.preset else {}
    network = {key: changes.pop(key) for key in stylize.NETWORK_OPTIONS if key in changes}
    try:
        set_changes, set_network = parse_set(args.set)
    except ValueError as error:
        sys.exit(f"error: {error}")
    changes |= set_changes
    network |= {name: stylizer_option(name, value) for name, value in set_network.items()}
    try:
        extract_fox()
    except StyleKerasError as error:  # without the video extra, or an unreadable clip
        sys.exit(f"error: {error}")
    write_styles(OUT)
    if args.sample_images:
        try:
            samples = fetch()
        except RuntimeError as error:
            sys.exit(f"error: {error}")
        PHOTOS.update({name: samples[name] for name in SAMPLE_PHOTOS})
        PAINTINGS.update({name: samples[name] for name in SAMPLE_STYLES})
    missing = [str(path) for path in [*PHOTOS.values(), *PAINTINGS.values()] if not path.exists()]
    if missing:
        sys.exit(f"error: missing benchmark images: {', '.join(missing)}")
    OUT.mkdir(parents=True, exist_ok=True)
    stylizer = stylekeras.Stylizer(precision=args.precision, **network)
    print(f"weights: {stylizer.weights.description}", flush=True)
    run = functools.partial(stylize_pair, stylizer, changes=changes, preset=args.preset, network=set_network)
    rows = [run(pair, args.size) for pair in args.pairs.split(",") if pair]
    held_out_rows = [run(pair, args.size) for pair in args.held_out.split(",") if pair]
    held_out_style_rows = [run(pair, args.size) for pair in args.held_out_styles.split(",") if pair]
    sample_rows = [run(pair, args.size) for pair in SAMPLE_PAIRS] if args.sample_images else []
    sizes = sorted({args.size, *(int(size) for size in args.sizes.split(",") if size)}) if args.sizes else []
    at_main_size = {row["pair"]: row for row in rows}
    size_rows = []
    for size in sizes:  # the main size is a column too
        for pair in SIZE_PAIRS:
            row = at_main_size.get(pair) if size == args.size else None
            row = row or run(pair, size, compute=pair in args.size_pairs.split(","))
            if row:
                size_rows.append(row)
    reference = scores(str(PHOTOS["tubingen"]), str(PAINTINGS["starry"]), str(REFERENCE)) if REFERENCE.exists() else {}
    if args.no_report or changes or network or args.sample_images:
        for name, chosen in (("pairs", rows), ("held out", held_out_rows), ("held-out styles", held_out_style_rows),
                             ("sample images", sample_rows)):
            if chosen:
                print(f"{name}: mean style {np.mean([r['style_progress'] for r in chosen]):.3f}, mean structure "
                      f"{np.mean([r['structure'] for r in chosen]):.3f}")
        return
    every_row = rows + held_out_rows + held_out_style_rows
    contact_sheet(every_row, OUT / "sheet.jpg")
    contact_sheet([row for row in every_row if row["pair"].split("-")[0] in SHIPPABLE_PHOTOS],
                  ROOT / "docs" / "quality_sheet.jpg")
    report = write_report(rows, held_out_rows, held_out_style_rows, size_rows, args.size, stylizer.weights.description,
                          stylizer.precision, reference)
    print(f"wrote {report}")


if __name__ == "__main__":
    main()
