"""jcjohnson/neural-style's default run on the quality benchmark's pairs: the reference, on every pair.

    python -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch==2.13.0 numpy   # once; never a dependency
    python bench/neural_style_reference.py --torch-python /tmp/torchvenv/bin/python --pairs tubingen-starry,stata-wave

QUALITY.md compares our defaults with one published result of jcjohnson/neural-style (tubingen × starry).
This runs what neural_style.lua does by default — its losses and weights, from noise, 1000 L-BFGS
iterations, 512 px, content relu4_2, style relu1_1 … relu5_1 (bench/torch_peer.py, `neural-style` mode) —
with the VGG19 weights `--weights auto` resolves to here, on any benchmark pair, so each pair has a
reference. The replica is checked against the published image on tubingen × starry (same measures).
Each pair takes 35–60 minutes at 512 px on 2 cores; its images go to bench/out/neural_style/, its scores to
bench/records/neural_style/ (committed, so a fresh clone keeps them), read by bench/quality_benchmark.py,
which puts them beside ours in QUALITY.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import stylekeras  # noqa: E402
from stylekeras.image_io import load_image  # noqa: E402
from benchmark import machine  # noqa: E402
from quality import scores  # noqa: E402
from quality_benchmark import (HELD_OUT_PAIRS, NEURAL_STYLE as OUT, PAINTINGS, PAIRS, PHOTOS,  # noqa: E402
                               neural_style_path, neural_style_record)

NEURAL_STYLE_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")


def run_pair(stylizer: stylekeras.Stylizer, pair: str, size: int, snapshots: list[int], seed: int,
             torch_python: str) -> dict:
    photo_name, painting_name = pair.split("-")
    photo, painting = PHOTOS[photo_name], PAINTINGS[painting_name]
    convs = [layer for layer in stylizer.model.layers if isinstance(layer, keras.layers.Conv2D)]
    weights = {}
    for conv in convs:
        weights[f"kernel_{conv.name}"], weights[f"bias_{conv.name}"] = conv.get_weights()
    problem = OUT / f"{pair}_{size}_problem.npz"
    # neural-style scales both images to `-image_size` on their longer side (`-style_scale 1`).
    np.savez(problem, content=load_image(photo, size), style=load_image(painting, size),
             conv_layers=np.array([conv.name for conv in convs]), snapshots=np.array(snapshots), seed=seed,
             threads=os.cpu_count(), **weights)
    out = OUT / f"{pair}_{size}_torch.json"
    started = time.time()
    subprocess.run([torch_python, str(ROOT / "bench" / "torch_peer.py"), str(problem), "neural-style", str(out)],
                   check=True)
    rows = []
    for snapshot in json.loads(out.read_text())["snapshots"]:
        image = Path(snapshot["path"]).with_suffix(".png")
        stylekeras.save_image(np.load(snapshot["path"]), image)
        Path(snapshot["path"]).unlink()
        rows.append({"iterations": snapshot["steps"], "seconds": snapshot["time"] - started,
                     "path": str(image.relative_to(ROOT)),
                     **scores(str(photo), str(painting), str(image))})
    problem.unlink()
    record = {"pair": pair, "size": size, "seed": seed, "weights": stylizer.weights.description,
              "machine": machine(), "snapshots": rows}
    path = neural_style_path(pair, size)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1))
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--torch-python", required=True, help="python of a venv with torch (benchmark-only peer)")
    parser.add_argument("--pairs", default=",".join(PAIRS + HELD_OUT_PAIRS))
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--snapshots", default="25,50,75,100,150,200,300,400,500,750,1000", help="iterations at which the image is scored")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--again", action="store_true", help="rerun pairs that have a result made with these weights and seed")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    stylizer = stylekeras.Stylizer(style_layers=NEURAL_STYLE_LAYERS, content_layers=("block4_conv2",),
                                   precision="float32")
    snapshots = [int(count) for count in args.snapshots.split(",")]
    for pair in args.pairs.split(","):
        record = None if args.again else neural_style_record(pair, args.size, stylizer.weights.description)
        if record is None or record["seed"] != args.seed:
            record = run_pair(stylizer, pair, args.size, snapshots, args.seed, args.torch_python)
        for row in record["snapshots"]:
            seconds = "" if row["seconds"] is None else f" {row['seconds']:6.0f} s"
            print(f"{pair} {row['iterations']:5d} iterations{seconds}: style {row['style_progress']:.3f}"
                  f"  structure {row['structure']:.3f}", flush=True)


if __name__ == "__main__":
    main()
