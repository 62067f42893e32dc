"""The fast-path levers not in stylekeras, each measured against our plain step on this machine.

    python bench/levers.py [SIZE] [PRECISION]     # default 256 px, mixed; about 3 minutes

Each row is seconds per step for one Adam step of our loss, median of
repeats after warm-up, and the ratio to the plain step (one tf.function call per step):
- several steps per tf.function call (a tf.range loop, so Python is off the hot path);
- XLA (jit_compile=True).
Several photos in one batch was a lever here and is now built (`--batch-size`); bench/benchmark.py
measures it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import stylekeras  # noqa: E402
from stylekeras import objective, optimizers, stylize  # noqa: E402

LOSS_WEIGHTS = stylize.TransferSettings().loss_weights(*objective.REFERENCE_SHAPE)
STEPS_PER_CALL = 10


def adam_step_function(stylizer, content: np.ndarray, style: np.ndarray, jit_compile: bool = False):
    """A tf.function running `steps` Adam steps of our loss on the content image."""
    targets = stylizer.targets(content, [style])
    image = tf.Variable(content[None])
    optimizer = optimizers.Adam(stylize.DEFAULT_LEARNING_RATE)
    optimizer.build([image])

    @tf.function(jit_compile=jit_compile)
    def steps(count):
        total = tf.zeros([1])  # one loss per image of the batch
        for _ in tf.range(count):
            parts, gradient = objective.loss_and_gradient(stylizer.model, image, targets, LOSS_WEIGHTS)
            total = parts["total"]
            optimizer.apply_gradients([(gradient, image)])
            image.assign(tf.clip_by_value(image, 0.0, 1.0))
        return total

    return steps


def seconds_per_step(steps, count: int, repeats: int) -> float:
    steps(tf.constant(count)).numpy()  # trace and warm up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        steps(tf.constant(count)).numpy()
        times.append((time.perf_counter() - started) / count)
    return float(np.median(times))


def main(size: int = 256, precision: str = "mixed") -> None:
    stylizer = stylekeras.Stylizer(weights="hed", precision=precision)
    content = stylekeras.load_image(ROOT / "examples/astronaut.jpg", size)
    style = stylekeras.load_image(ROOT / "examples/starry_night.jpg", size)
    plain = seconds_per_step(adam_step_function(stylizer, content, style), 1, 3 * STEPS_PER_CALL)
    rows = {
        "one step per call (ours)": plain,
        f"{STEPS_PER_CALL} steps per call": seconds_per_step(adam_step_function(stylizer, content, style),
                                                             STEPS_PER_CALL, 3),
        "XLA, one step per call": seconds_per_step(adam_step_function(stylizer, content, style, True), 1,
                                                   3 * STEPS_PER_CALL),
    }
    print(f"{size} px, {precision}, hed weights")
    print("| lever | s/step | vs ours |")
    print("| --- | --- | --- |")
    for name, seconds in rows.items():
        print(f"| {name} | {seconds:.3f} | {plain / seconds:.2f}× |")


if __name__ == "__main__":
    main(*(int(arg) if arg.isdigit() else arg for arg in sys.argv[1:]))
