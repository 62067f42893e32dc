"""Time to the quality goal for Adam and L-BFGS on the same photo × painting pair (default weights).

    python bench/optimizers.py [--size 256] [--content PHOTO] [--style PAINTING]

Every `--every` steps the image is scored with bench/quality.py's measures (the clock is paused while it
is); prints when each optimizer first reaches style ≥ 0.65 with structure ≥ 0.55 (QUALITY.md's goal), and
its scores along the way.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import stylekeras

sys.path.insert(0, str(Path(__file__).parent))
from quality import scores  # noqa: E402

STYLE_GOAL, STRUCTURE_GOAL = 0.65, 0.55
STEPS = {"lbfgs": 100, "adam": 300}

parser = argparse.ArgumentParser()
parser.add_argument("--size", type=int, default=256)
parser.add_argument("--every", type=int, default=10)
parser.add_argument("--content", default="examples/astronaut.jpg")
parser.add_argument("--style", default="examples/starry_night.jpg")
args = parser.parse_args()

stylizer = stylekeras.Stylizer()
print(f"{args.size} px, {args.content} × {args.style}, weights: {stylizer.weights.description}")
scratch = Path(tempfile.mkdtemp())
for optimizer, steps in STEPS.items():
    marks, paused = [], [0.0]
    started = time.perf_counter()

    def score(report, optimizer=optimizer):
        if report.step % args.every:
            return
        pause = time.perf_counter()
        path = stylekeras.save_image(report.image.numpy(), scratch / f"{optimizer}.png")
        measured = scores(args.content, args.style, str(path))
        marks.append((report.step, pause - started - paused[0], measured["style_progress"], measured["structure"]))
        paused[0] += time.perf_counter() - pause

    stylizer.transfer(args.content, args.style, size=args.size, steps=steps, optimizer=optimizer, callback=score)
    reached = next((mark for mark in marks if mark[2] >= STYLE_GOAL and mark[3] >= STRUCTURE_GOAL), None)
    trail = ", ".join(f"{step}: {style:.2f}/{structure:.2f}" for step, _, style, structure in marks[::2])
    when = f"reached at step {reached[0]}, {reached[1]:.0f} s" if reached else f"not reached in {steps} steps"
    print(f"{optimizer:>5}: goal {when}; style/structure by step: {trail}", flush=True)
