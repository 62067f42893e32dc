"""Photos per minute on Ray against the local folder batch, whole commands timed on this machine.

    python bench/ray_benchmark.py [--photos 8] [--size 128] [--repeats 2]   # about 8 minutes on 2 cores

Makes `--photos` photos from examples/ (each photo and its mirror image, downscaled to `--size` so decoding
costs nothing) and stylizes them with examples/starry_night.jpg three ways, each `--repeats` times into an
empty folder: the local batch (`stylekeras transfer PHOTOS/ …`), and `--ray local` with 1 and with 2 workers
(`--workers-per-node`), the three taking turns. Default settings but `--precision float32`; wall time of the
whole command, Ray's start-up and the workers' model building included. Writes the "## Many photos on Ray"
section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchmark import machine, write_section  # noqa: E402

PHOTOS = ["astronaut.jpg", "chelsea.jpg", "coffee.jpg", "rocket.jpg"]
RUNS = {"local folder batch": [], "--ray local, 1 worker": ["--ray", "local", "--workers-per-node", "1"],
        "--ray local, 2 workers": ["--ray", "local", "--workers-per-node", "2"]}


def make_photos(folder: Path, count: int, size: int) -> None:
    folder.mkdir()
    for index in range(count):
        with Image.open(ROOT / "examples" / PHOTOS[index // 2 % len(PHOTOS)]) as photo:
            photo = ImageOps.mirror(photo) if index % 2 else photo
            photo.thumbnail((size, size))
            photo.convert("RGB").save(folder / f"photo{index}.png")


def timed_run(photos: Path, output: Path, size: int, extra: list[str]) -> float:
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-m", "stylekeras", "transfer", str(photos), str(ROOT / "examples" / "starry_night.jpg"),
         "-o", str(output), "--size", str(size), "--precision", "float32", "--quiet", *extra],
        capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        sys.exit(f"error: {' '.join(extra) or 'local'} failed:\n{completed.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=8)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    lines = ["## Many photos on Ray", "",
             f"`python bench/ray_benchmark.py`, {time.strftime('%Y-%m-%d')}: {machine()}; {args.photos} photos at {args.size} px × "
             "starry_night.jpg, default settings in float32; wall time of the whole command (start-up, and on Ray "
             f"the cluster's start and the workers' model building, included), {args.repeats} runs each, taking turns.", "",
             "| run | seconds (min / median) | photos per minute (best) | vs the local batch |",
             "| --- | --- | --- | --- |"]
    with tempfile.TemporaryDirectory() as scratch:
        photos = Path(scratch) / "photos"
        make_photos(photos, args.photos, args.size)
        # The three take turns, so a spell of busy neighbours on a virtual machine slows one round, not one way.
        seconds = {name: [] for name in RUNS}
        for repeat in range(args.repeats):
            for index, (name, extra) in enumerate(RUNS.items()):
                seconds[name].append(timed_run(photos, Path(scratch) / f"out{index}_{repeat}", args.size, extra))
                print(f"{name}, run {repeat + 1}: {seconds[name][-1]:.1f} s", flush=True)
    local_best = min(seconds["local folder batch"])
    for name, times in seconds.items():
        best = min(times)
        lines.append(f"| {name} | {best:.1f} / {statistics.median(times):.1f} | "
                     f"{60 * args.photos / best:.1f} | {local_best / best:.2f}× |")
    print("\n".join(lines))
    print(f"wrote {write_section('Many photos on Ray', lines)}")


if __name__ == "__main__":
    main()
