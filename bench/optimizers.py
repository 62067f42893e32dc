"""Loss versus time for Adam and L-BFGS on the same problem (offline hed weights).

    python bench/optimizers.py [--size 256] [--steps 200]

Prints, for each optimizer, the total loss (fixed α, β, γ: the defaults) after 25 %, 50 % and 100 % of
the steps with the wall time, and the time each needs to reach Adam's final loss.
"""

import argparse
import time

import numpy as np

import stylekeras

parser = argparse.ArgumentParser()
parser.add_argument("--size", type=int, default=256)
parser.add_argument("--steps", type=int, default=200)
parser.add_argument("--content", default="examples/astronaut.jpg")
parser.add_argument("--style", default="examples/starry_night.jpg")
args = parser.parse_args()

stylizer = stylekeras.Stylizer(weights="hed")
runs = {}
for optimizer in ("adam", "lbfgs"):
    times = []
    started = time.perf_counter()
    result = stylizer.transfer(args.content, args.style, size=args.size, steps=args.steps, optimizer=optimizer,
                               callback=lambda report: times.append(time.perf_counter() - started))
    runs[optimizer] = (np.asarray(times), result.history["total"])

target = runs["adam"][1][-1]
print(f"{args.size} px, {args.steps} steps, hed weights; loss = total with the default α, β, γ")
for optimizer, (times, losses) in runs.items():
    marks = [max(1, args.steps // 4), args.steps // 2, args.steps]
    cells = "  ".join(f"step {m}: {losses[m - 1]:.3e} at {times[m - 1]:.0f} s" for m in marks)
    reached = np.flatnonzero(losses <= target)
    when = f"{times[reached[0]]:.0f} s (step {reached[0] + 1})" if reached.size else "never"
    print(f"{optimizer:>5}: {cells}  | reaches Adam's final loss after {when}")
