"""How L-BFGS spends a default run: per scale, its steps, loss evaluations, the steps its safeguard
shortened and those it gave up on (restarts, `stylekeras.optimizers.LBFGS.safeguard`), then the final loss,
the seconds and bench/quality.py's measures of the result.

    python bench/lbfgs_trace.py CONTENT STYLE [--size 512] [--precision float32] [--out trace.png]

A step costs one evaluation when the safeguard accepts it as it is; every halving costs one more.
"""

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

import stylekeras
from stylekeras import optimizers

sys.path.insert(0, str(Path(__file__).parent))
from quality import scores  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("content")
parser.add_argument("style")
parser.add_argument("--size", type=int, default=512)
parser.add_argument("--precision", default="float32")
parser.add_argument("--out", default="bench/out/lbfgs_trace.png")
args = parser.parse_args()

steps, evaluations, shortened, restarts = Counter(), Counter(), Counter(), Counter()
restarted_last = Counter()  # per scale: whether its previous step was given up on
safeguard = optimizers.LBFGS.safeguard


def traced_safeguard(optimizer, variable, loss_before, evaluate):
    size = max(variable.shape[1:3])
    calls = []

    def counted():
        calls.append(1)
        return evaluate()

    accepted = safeguard(optimizer, variable, loss_before, counted)
    # A step starts from the previous step's accepted evaluation, except a scale's first step and the step
    # after a restart, which evaluate the loss themselves.
    evaluations[size] += len(calls) + (steps[size] == 0 or restarted_last[size])
    restarted_last[size] = accepted is None
    steps[size] += 1
    shortened[size] += accepted is not None and len(calls) > 1
    restarts[size] += accepted is None
    return accepted


optimizers.LBFGS.safeguard = traced_safeguard
started = time.perf_counter()
result = stylekeras.transfer(args.content, args.style, size=args.size, precision=args.precision)
seconds = time.perf_counter() - started
Path(args.out).parent.mkdir(parents=True, exist_ok=True)
Image.fromarray((np.clip(result.image, 0, 1) * 255).round().astype(np.uint8)).save(args.out)
for size in sorted(steps):
    print(f"{size} px: {steps[size]} steps, {evaluations[size]} loss evaluations, {shortened[size]} steps "
          f"shortened, {restarts[size]} restarts")
measured = scores(args.content, args.style, args.out)
print(f"final loss {result.history['total'][-1]:.4g}, {seconds:.0f} s, style {measured['style_progress']:.3f}, "
      f"structure {measured['structure']:.3f}")
