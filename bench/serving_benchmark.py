"""The served stylizer against the library: one `stylize` request through TF Serving's C++ loader vs the same run in Python.

    python bench/serving_benchmark.py [--size 256] [--steps 100] [--repeats 2]   # about 5 minutes on 2 cores

Exports the stylizer (`stylekeras export --stylizer`, default weights) to a scratch folder, then times,
on the same photo and painting (examples/astronaut.jpg × examples/starry_night.jpg, resized to `--size`
beforehand so both sides get the same pixels):
- the library: `Stylizer.transfer` with the export's settings (Adam, one scale, float32), in this process;
- the export: TF_SessionRun of a `stylize` request (TF_LoadSessionFromSavedModel + TF_SessionRun, the C++
  loader TF Serving uses, in a process without TensorFlow's Python package).
Each side runs `--repeats` times in one process; the first includes tracing (library) or graph
optimization (C API). One process each, TensorFlow's default threads. Also checks the two images agree.
Writes the "## Served stylizer" section of BENCHMARKS.md (bench/benchmark.py keeps it).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from stylekeras import export, serving  # noqa: E402
from stylekeras.image_io import load_image  # noqa: E402
from benchmark import machine, write_section  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--photo", type=Path, default=ROOT / "examples" / "astronaut.jpg")
    parser.add_argument("--painting", type=Path, default=ROOT / "examples" / "starry_night.jpg")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        target = serving.export_stylizer(scratch, size=args.size, steps=args.steps)
        export_seconds = time.perf_counter() - started
        settings = serving.read_stylizer_settings(target)
        content, style = load_image(args.photo, args.size)[None], load_image(args.painting, args.size)[None]
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
    difference = float(np.max(np.abs(replies[-1].outputs["image"][0] - result.image)))
    served_seconds = [reply.seconds for reply in replies]

    height, width = content.shape[1:3]
    lines = [
        "## Served stylizer", "",
        f"`python bench/serving_benchmark.py --size {args.size} --steps {args.steps}`, {time.strftime('%Y-%m-%d')}: "
        f"{machine()}; float32; weights {settings.weights}; "
        f"{args.photo.name} × {args.painting.name} at "
        f"{width}×{height} px, {args.steps} Adam steps. One `stylize` request through TensorFlow's C API "
        "(TF_LoadSessionFromSavedModel + TF_SessionRun, the loader TF Serving uses) against the same run in the "
        "library (`Stylizer.transfer` with the export's settings); each in one process, run "
        f"{args.repeats} times, the first including tracing or graph optimization.", "",
        "| run | library (s) | served, C API (s) | served / library |", "| --- | --- | --- | --- |",
        *(f"| {index + 1}{' (first)' if index == 0 else ''} | {ours:.1f} | {theirs:.1f} | {theirs / ours:.2f}× |"
          for index, (ours, theirs) in enumerate(zip(library_seconds, served_seconds))),
        "",
        f"The export took {export_seconds:.0f} s; the C API process, loading included, {served_process:.0f} s. "
        f"The served image differs from the library's by at most {difference:.1e} (pixel values in [0, 1]).",
    ]
    print("\n".join(lines))
    print(f"wrote {write_section('Served stylizer', lines)}")


if __name__ == "__main__":
    main()
