"""The served stylizer against the library: one `stylize` request through TF Serving's C++ loader vs the same run in Python.

    python bench/serving_benchmark.py [--size 256] [--steps N] [--repeats 2] [--precisions float32,mixed]
                                      [--optimizer lbfgs|adam] [--quality PAIRS] [--quality-size 512]
    # about 3 minutes on 2 cores with AMX for both precisions (float32 is the slow one); --quality adds
    # about 1.5 minutes a pair in bfloat16

Exports the stylizer (`stylekeras export --stylizer`, default weights) to a scratch folder in each precision
(float32, and bfloat16 where the CPU has AMX or AVX512-BF16), then times, on the same photo and painting
(examples/astronaut.jpg × examples/starry_night.jpg, resized to `--size` beforehand so both sides get the
same pixels):
- the library: `Stylizer.transfer` with the export's settings (its optimizer, one scale, its precision), in this
  process;
- the export: TF_SessionRun of a `stylize` request (TF_LoadSessionFromSavedModel + TF_SessionRun, the C++
  loader TF Serving uses, in a process without TensorFlow's Python package).
Each side runs `--repeats` times in one process; the first includes tracing (library) or graph
optimization (C API). One process each, TensorFlow's default threads. Also checks the two images agree.
With `--quality`, also what a default request gives on each of those pairs of bench/quality_benchmark.py
(`photo-painting`, comma-separated) at `--quality-size`, from an export with each optimizer at its default
steps, in bfloat16 where it is among `--precisions` (float32 otherwise): the `stylize` reply's style and
structure measures (bench/quality.py) and seconds, the images written to bench/out/served/.
Writes the "## Served stylizer" section of BENCHMARKS.md (bench/benchmark.py keeps it).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from stylekeras import defaults, export, serving  # noqa: E402
from stylekeras.features import bfloat16_is_fast  # noqa: E402
from stylekeras.image_io import load_image  # noqa: E402
from benchmark import machine, write_section  # noqa: E402
from quality import scores  # noqa: E402
from quality_benchmark import PAINTINGS, PHOTOS  # noqa: E402

OUT = ROOT / "bench" / "out" / "served"

PRECISION_NAMES = {"float32": "float32", "mixed": "bfloat16 (`--precision mixed`)"}
OPTIMIZER_NAMES = {"lbfgs": "L-BFGS", "adam": "Adam"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--optimizer", choices=defaults.OPTIMIZERS, default=defaults.DEFAULT_SERVED_OPTIMIZER)
    parser.add_argument("--steps", type=int, default=None, help="default: the optimizer's served default")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--precisions", default=None,
                        help="comma-separated export precisions (float32, mixed); default: both where the CPU has "
                             "bfloat16 units, float32 elsewhere")
    parser.add_argument("--photo", type=Path, default=ROOT / "examples" / "astronaut.jpg")
    parser.add_argument("--painting", type=Path, default=ROOT / "examples" / "starry_night.jpg")
    parser.add_argument("--quality", default="", help="comma-separated pairs of bench/quality_benchmark.py")
    parser.add_argument("--quality-size", type=int, default=defaults.DEFAULT_SIZE)
    args = parser.parse_args()
    args.steps = defaults.DEFAULT_SERVING_STEPS[args.optimizer] if args.steps is None else args.steps
    precisions = (args.precisions.split(",") if args.precisions
                  else ["float32", "mixed"] if bfloat16_is_fast() else ["float32"])
    content, style = load_image(args.photo, args.size)[None], load_image(args.painting, args.size)[None]
    runs = {precision: served_and_library(precision, content, style, args) for precision in precisions}

    height, width = content.shape[1:3]
    weights = next(iter(runs.values()))["weights"]
    lines = [
        "## Served stylizer", "",
        f"`python bench/serving_benchmark.py --size {args.size} --optimizer {args.optimizer} --steps {args.steps}"
        f"{f' --quality {args.quality}' if args.quality else ''}`, {time.strftime('%Y-%m-%d')}: "
        f"{machine()}; {' and '.join(PRECISION_NAMES[precision] for precision in precisions)} exports; "
        f"weights {weights}; {args.photo.name} × {args.painting.name} at "
        f"{width}×{height} px, {args.steps} {OPTIMIZER_NAMES[args.optimizer]} steps. One `stylize` request through TensorFlow's C API "
        "(TF_LoadSessionFromSavedModel + TF_SessionRun, the loader TF Serving uses) against the same run in the "
        "library (`Stylizer.transfer` with the export's settings); each in one process, run "
        f"{args.repeats} times, the first including tracing or graph optimization.", "",
        "| export | run | library (s) | served, C API (s) | served / library |", "| --- | --- | --- | --- | --- |",
    ]
    for precision, run in runs.items():
        lines += [f"| {PRECISION_NAMES[precision]} | {index + 1}{' (first)' if index == 0 else ''} | {ours:.1f} | "
                  f"{theirs:.1f} | {theirs / ours:.2f}× |"
                  for index, (ours, theirs) in enumerate(zip(run["library"], run["served"]))]
    lines.append("")
    lines += [f"- {PRECISION_NAMES[precision]}: the export took {run['export']:.0f} s; the C API process, loading "
              f"included, {run['process']:.0f} s. The served image differs from the library's by at most "
              f"{run['difference']:.1e} (pixel values in [0, 1])." for precision, run in runs.items()]
    if {"float32", "mixed"} <= set(runs):
        served = {precision: min(run["served"]) for precision, run in runs.items()}
        lines.append(f"- A request to the bfloat16 export took {served['mixed']:.1f} s, to the float32 one "
                     f"{served['float32']:.1f} s (the faster of each's requests): "
                     f"**{served['float32'] / served['mixed']:.2f}×** as fast.")
    if args.quality:
        lines += served_quality(args.quality.split(","), args.quality_size, "mixed" if "mixed" in precisions else precisions[0])
    print("\n".join(lines))
    print(f"wrote {write_section('Served stylizer', lines)}")


def served_and_library(precision: str, content: np.ndarray, style: np.ndarray, args: argparse.Namespace) -> dict:
    """Export a stylizer in `precision`, time `args.repeats` `stylize` requests through the C API and as many
    runs of the library with the export's settings."""
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        target = serving.export_stylizer(scratch, size=args.size, optimizer=args.optimizer, steps=args.steps,
                                         precision=precision)
        export_seconds = time.perf_counter() - started
        settings = serving.read_stylizer_settings(target)
        request = {"content": content, "style": style}
        started = time.perf_counter()
        replies = export.run_with_c_api(target, [("stylize", request)] * args.repeats)
        served_process = time.perf_counter() - started
    if any(reply.code for reply in replies):
        raise SystemExit(f"stylize failed: {replies[0].message}")
    stylizer = serving.rebuild_stylizer(settings)
    library_seconds = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        result = stylizer.transfer(content[0], style[0], settings=settings.transfer_settings(size=None))
        library_seconds.append(time.perf_counter() - started)
    return {"weights": settings.weights, "export": export_seconds, "process": served_process,
            "served": [reply.seconds for reply in replies], "library": library_seconds,
            "difference": float(np.max(np.abs(replies[-1].outputs["image"][0] - result.image)))}


def served_quality(pairs: list[str], size: int, precision: str) -> list[str]:
    """A default `stylize` request on each pair to an export with each optimizer, scored, as table lines."""
    OUT.mkdir(parents=True, exist_ok=True)
    inputs = {pair: [load_image(PHOTOS[pair.split("-")[0]])[None], load_image(PAINTINGS[pair.split("-")[1]])[None]]
              for pair in pairs}
    rows = {}
    for optimizer in defaults.OPTIMIZERS:
        with tempfile.TemporaryDirectory() as scratch:
            target = serving.export_stylizer(scratch, size=size, optimizer=optimizer, precision=precision)
            replies = export.run_with_c_api(target, [("stylize", {"content": content, "style": style})
                                                     for content, style in inputs.values()])
        for pair, reply in zip(pairs, replies):
            if reply.code:
                raise SystemExit(f"stylize failed on {pair}: {reply.message}")
            path = OUT / f"{pair}_{optimizer}.png"
            Image.fromarray(np.round(reply.outputs["image"][0] * 255).astype(np.uint8)).save(path)
            photo, painting = pair.split("-")
            rows.setdefault(pair, {})[optimizer] = (scores(str(PHOTOS[photo]), str(PAINTINGS[painting]), str(path)),
                                                    reply.seconds)
    lines = ["", f"What a default request gives at {size} px, {PRECISION_NAMES[precision]}, from an export with each "
             f"optimizer at its default steps ({', '.join(f'{OPTIMIZER_NAMES[name]} {steps}' for name, steps in defaults.DEFAULT_SERVING_STEPS.items())}); "
             "style / structure (bench/quality.py) and the request's seconds (the first request of each export "
             "includes graph optimization):", "",
             "| pair | " + " | ".join(f"{OPTIMIZER_NAMES[name]}: style / structure | seconds" for name in defaults.OPTIMIZERS) + " |",
             "| --- | " + " | ".join("--- | ---" for _ in defaults.OPTIMIZERS) + " |"]
    for pair, by_optimizer in rows.items():
        lines.append(f"| {pair} | " + " | ".join(
            f"{row['style_progress']:.3f} / {row['structure']:.3f} | {seconds:.0f}"
            for row, seconds in (by_optimizer[name] for name in defaults.OPTIMIZERS)) + " |")
    means = {name: np.mean([by_optimizer[name][0]["style_progress"] for by_optimizer in rows.values()])
             for name in defaults.OPTIMIZERS}
    lines += ["", "- Mean style: " + ", ".join(f"{OPTIMIZER_NAMES[name]} {value:.3f}" for name, value in means.items()) + "."]
    return lines


if __name__ == "__main__":
    main()
