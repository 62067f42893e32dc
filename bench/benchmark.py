"""Speed of stylekeras against the TensorFlow tutorial's loop, measured in one run on this machine.

    python bench/benchmark.py            # about 10 minutes on 2 cores; writes BENCHMARKS.md

Same images (examples/), backbone and weights (offline hed VGG16) for both, so machine noise cancels in
the ratios. Prints and records:
1. seconds per step at 256 and 512 px (median after warm-up), ours vs the reference, and the ratio;
2. utilisation: conv FLOPs per step (from the layer shapes) / step time, against the conv throughput of
   a plain tf.nn.conv2d loop measured here;
3. time to quality at 256 px: wall time until our total loss (the default α, β, γ) falls to what the
   reference's image has after 200 steps, for ours with Adam and with L-BFGS;
4. peak memory (max RSS of a child process running two steps) at 512, 1024 and 2048 px.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import stylekeras  # noqa: E402
from reference import CONTENT_LAYERS as REFERENCE_CONTENT, STYLE_LAYERS as REFERENCE_STYLE, ReferenceLoop  # noqa: E402
from stylekeras import losses  # noqa: E402
from stylekeras.features import BLOCK_FILTERS, layer_shapes  # noqa: E402

CONTENT, STYLE = ROOT / "examples/astronaut.jpg", ROOT / "examples/starry_night.jpg"


def conv_throughput() -> float:
    """GFLOP/s of a plain 3×3, 256→256-channel tf.nn.conv2d at 128×128 (a mid-VGG layer)."""
    inputs = tf.random.normal([1, 128, 128, 256])
    kernel = tf.random.normal([3, 3, 256, 256])
    conv = tf.function(lambda: tf.nn.conv2d(inputs, kernel, 1, "SAME"))
    for _ in range(3):
        conv().numpy()
    times = []
    for _ in range(10):
        started = time.perf_counter()
        conv().numpy()
        times.append(time.perf_counter() - started)
    return 2 * 128 * 128 * 256 * 256 * 9 / np.median(times) / 1e9


def step_flops(size: int, deepest: str) -> float:
    """Conv FLOPs of one step: the forward pass up to `deepest` plus the backward pass to the input (≈ 2×)."""
    flops, channels = 0.0, 3
    for name, (height, width, out_channels) in layer_shapes("vgg16", size, size):
        if "conv" in name:
            flops += 2 * height * width * channels * out_channels * 9
            channels = out_channels
        if name == deepest:
            break
    return 2 * flops


def median_step(step, count: int = 8, warmup: int = 3) -> float:
    times = []
    for _ in range(warmup + count):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return float(np.median(times[warmup:]))


def our_step_time(stylizer, size: int) -> float:
    times = []
    started = [time.perf_counter()]

    def clock(report):
        times.append(time.perf_counter() - started[0])
        started[0] = time.perf_counter()

    stylizer.transfer(CONTENT, STYLE, size=size, steps=11, callback=clock)
    return float(np.median(times[3:]))


def reference_step_time(stylizer, size: int) -> float:
    loop = ReferenceLoop(stylizer.weights, stylekeras.load_image(CONTENT, size), stylekeras.load_image(STYLE, size))
    return median_step(lambda: float(loop.step()))


def our_loss(stylizer, image: np.ndarray, targets) -> float:
    parts = stylizer.loss_parts(image[None], *targets)
    weights = (stylekeras.stylize.DEFAULT_CONTENT_WEIGHT, stylekeras.stylize.DEFAULT_STYLE_WEIGHT,
               stylekeras.stylize.DEFAULT_TV_WEIGHT)
    return float(losses.total_loss(parts["content"], parts["style"], parts["tv"], *weights))


def time_to_quality(stylizer, size: int = 256, reference_steps: int = 200) -> dict:
    content, style = stylekeras.load_image(CONTENT, size), stylekeras.load_image(STYLE, size)
    targets = stylizer.targets(content, [style])
    loop = ReferenceLoop(stylizer.weights, content, style)
    started = time.perf_counter()
    for _ in range(reference_steps):
        loop.step()
    reference_seconds = time.perf_counter() - started
    goal = our_loss(stylizer, loop.image[0].numpy(), targets)
    rows = {"reference (200 steps)": (reference_seconds, reference_steps)}
    for optimizer in ("adam", "lbfgs"):
        reached = {}
        began = time.perf_counter()

        def watch(report):
            if "at" not in reached and report.losses["total"] <= goal:
                reached["at"], reached["step"] = time.perf_counter() - began, report.step
                raise KeyboardInterrupt  # stop: the quality is reached

        stylizer.transfer(CONTENT, STYLE, size=size, steps=1000, optimizer=optimizer, callback=watch)
        rows[f"ours, {optimizer}"] = (reached.get("at", float("inf")), reached.get("step"))
    return {"goal": goal, "rows": rows}


PEAK_SCRIPT = """
import resource, sys
import stylekeras
stylekeras.Stylizer(weights="hed").transfer(sys.argv[1], sys.argv[2], size=int(sys.argv[3]), steps=2)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_memory_gib(size: int) -> float:
    completed = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(CONTENT), str(STYLE), str(size)],
                               capture_output=True, text=True,
                               env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)})
    if completed.returncode != 0:
        return float("nan")
    return int(completed.stdout.split()[-1]) / 2**20  # ru_maxrss is in KiB on Linux


def main() -> None:
    stylizer = stylekeras.Stylizer(weights="hed")
    lines = [f"# Benchmarks", "", f"Machine: {platform.processor() or platform.machine()}, {tf.config.threading.get_intra_op_parallelism_threads() or 'default'} intra-op threads, "
             f"{len(tf.config.list_physical_devices('GPU'))} GPU, TensorFlow {tf.__version__}; "
             f"`python bench/benchmark.py`, {time.strftime('%Y-%m-%d')}. Weights: hed (VGG16), images: examples/.", ""]
    peak = conv_throughput()
    lines += [f"Conv throughput (plain tf.nn.conv2d, 3×3, 256→256 channels, 128×128): **{peak:.0f} GFLOP/s**", ""]
    lines += ["| size | ours s/step | reference s/step | speed-up | ours GFLOP/s (% of conv peak) | reference GFLOP/s |",
              "| --- | --- | --- | --- | --- | --- |"]
    for size in (256, 512):
        ours, reference = our_step_time(stylizer, size), reference_step_time(stylizer, size)
        our_rate = step_flops(size, "block5_conv1") / ours / 1e9
        reference_rate = step_flops(size, REFERENCE_CONTENT[0]) / reference / 1e9
        lines.append(f"| {size} | {ours:.3f} | {reference:.3f} | {reference / ours:.2f}× | {our_rate:.0f} "
                     f"({100 * our_rate / peak:.0f} %) | {reference_rate:.0f} |")
        print(lines[-1], flush=True)
    quality = time_to_quality(stylizer)
    lines += ["", f"Time to quality at 256 px: until our total loss ≤ {quality['goal']:.4g}, the loss of the "
              "reference's image after 200 steps.", "", "| run | seconds | steps | vs reference |", "| --- | --- | --- | --- |"]
    reference_seconds = quality["rows"]["reference (200 steps)"][0]
    for name, (seconds, steps) in quality["rows"].items():
        lines.append(f"| {name} | {seconds:.1f} | {steps} | {reference_seconds / seconds:.2f}× |")
        print(lines[-1], flush=True)
    lines += ["", "| size | peak RSS, 2 steps (GiB) |", "| --- | --- |"]
    for size in (512, 1024, 2048):
        lines.append(f"| {size} | {peak_memory_gib(size):.2f} |")
        print(lines[-1], flush=True)
    lines += ["", "Tiling (4096 px within bounded memory) is not implemented yet.", ""]
    (ROOT / "BENCHMARKS.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
