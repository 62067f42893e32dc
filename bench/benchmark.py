"""Speed of stylekeras against the TensorFlow tutorial's loop, measured in one run on this machine.

    python bench/benchmark.py            # about 10–15 minutes on 2 cores; writes BENCHMARKS.md
                                         # (keeping the sections other scripts write, and "Design choices")

Same images (examples/), backbone and weights (the default, `--weights auto`: ImageNet VGG19) for both, so
machine noise cancels in the ratios. (bench/peer_benchmark.py adds PyTorch, in a section of its own.) Prints and records:
1. seconds per step at 256 and 512 px (median after warm-up), ours in float32 and in mixed precision vs
   the reference, and the ratios, the three taking turns in `ROUNDS` rounds (each time the rounds' median);
2. utilisation: conv FLOPs per step (from the layer shapes) / step time, against the throughput of a
   3×3 convolution measured here in float32 and in bfloat16 (`conv_throughput`) in every round, the best kept;
3. time to quality at 256 px: both loops minimise one objective (our loss with the default α, β, γ);
   the goal is the loss the reference loop reaches in 200 steps, and each of our settings is timed until
   its image's float32 loss (evaluated off the clock) falls to that goal;
4. photos stylized together (`Stylizer.transfer_batch`, `--batch-size`): seconds per step per photo for
   batches of 1, 2 and 4 at 256 and 512 px, in the precision `--precision auto` picks here (what a user's
   batch runs in), taking turns likewise;
5. peak memory (max RSS of a child process) for two steps at 512, 1024 and 2048 px, for a batch of 4 at
   512 px, and for one tiled step (--tile 512) at 4096 px.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import stylekeras  # noqa: E402
from reference import ReferenceLoop  # noqa: E402
from stylekeras import features, losses, objective, stylize  # noqa: E402
from stylekeras.features import layer_shapes  # noqa: E402

CONTENT, STYLE = ROOT / "examples/astronaut.jpg", ROOT / "examples/starry_night.jpg"
LOSS_WEIGHTS = stylize.TransferSettings().loss_weights(*objective.REFERENCE_SHAPE)
REFERENCE_STEPS = 200
ROUNDS = 3  # rounds in which the runs compared take turns


def conv_throughput(dtype: tf.DType = tf.float32) -> float:
    """GFLOP/s of a 3×3, 256→256-channel convolution at 128×128 (a mid-VGG layer): the faster of a plain
    tf.nn.conv2d and its flipped-kernel form (`features.FlippedKernelConv2D`, what our float32 model runs
    where oneDNN does), so that utilisation is measured against the best this TensorFlow does here."""
    inputs = tf.cast(tf.random.normal([1, 128, 128, 256]), dtype)
    kernel = tf.cast(tf.random.normal([3, 3, 256, 256]) * 0.05, dtype)
    flipped = features.FlippedKernelConv2D(256, 3, padding="same", use_bias=False, dtype=dtype.name)
    flipped.build(inputs.shape)
    flipped.kernel.assign(kernel)
    convs = (tf.function(lambda: tf.nn.conv2d(inputs, kernel, 1, "SAME"), autograph=False),
             tf.function(lambda: flipped(inputs), autograph=False))
    seconds = min(median_step(lambda conv=conv: conv().numpy(), count=10) for conv in convs)
    return 2 * 128 * 128 * 256 * 256 * 9 / seconds / 1e9


def step_flops(backbone: str, size: int, deepest: str) -> float:
    """Conv FLOPs of one step: the forward pass up to `deepest` plus the backward pass to the input (≈ 2×)."""
    flops, channels = 0.0, 3
    for name, (height, width, out_channels) in layer_shapes(backbone, size, size):
        if "conv" in name:
            flops += 2 * height * width * channels * out_channels * 9
            channels = out_channels
        if name == deepest:
            break
    return 2 * flops


def median_of(rounds: list[dict], key) -> float:
    """The median over `rounds` of each round's value under `key`."""
    return float(np.median([measured[key] for measured in rounds]))


def median_step(step, count: int = 8, warmup: int = 3) -> float:
    times = []
    for _ in range(warmup + count):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return float(np.median(times[warmup:]))


def our_step_time(stylizer, size: int, photos: int = 1, steps: int = 6) -> float:
    """Seconds per step per photo at `size` when `photos` copies of the content image are stylized together:
    Adam at one scale, like the tutorial's loop (one loss evaluation a step; and batches need Adam). The
    median of the steps after the first, which also holds the run's start (targets, tracing)."""
    times = []
    started = [time.perf_counter()]

    def clock(report):
        times.append(time.perf_counter() - started[0])
        started[0] = time.perf_counter()

    stylizer.transfer_batch([CONTENT] * photos, STYLE, size=size, steps=steps, optimizer="adam", scales=1,
                            callbacks=[clock] + [None] * (photos - 1))
    return float(np.median(times[1:])) / photos


def reference_step_time(stylizer, size: int) -> float:
    loop = ReferenceLoop(stylizer.weights, stylekeras.load_image(CONTENT, size), stylekeras.load_image(STYLE, size))
    return median_step(lambda: float(loop.step()), count=5, warmup=1)


def time_to_quality(stylizers: dict, size: int = 256) -> dict:
    """Seconds until each run's image reaches the reference loop's 200-step loss on one shared objective."""
    judge = stylizers["float32"]
    content, style = stylekeras.load_image(CONTENT, size), stylekeras.load_image(STYLE, size)
    targets = judge.targets(content, [style])

    def objective(image):
        parts = judge.loss_parts(image, targets)
        return losses.total_loss(parts["content"], parts["style"], parts["tv"], *LOSS_WEIGHTS)[0]

    loop = ReferenceLoop(judge.weights, content, style, objective)
    started = time.perf_counter()
    for _ in range(REFERENCE_STEPS):
        loop.step()
    reference_seconds = time.perf_counter() - started
    evaluate = tf.function(objective)
    goal = float(evaluate(loop.image))
    rows = {f"reference loop, {REFERENCE_STEPS} steps": (reference_seconds, REFERENCE_STEPS)}
    # (optimizer, precision, scales, steps per scale): the 2-scale run spends 50 cheap steps at 128 px first.
    runs = [("adam", "float32", 1, 400), ("adam", "mixed", 1, 400), ("lbfgs", "float32", 1, 400),
            ("lbfgs", "mixed", 1, 400)]
    for optimizer, precision, scales, steps in runs:
        reached, paused = {}, [0.0]
        began = time.perf_counter()

        def watch(report):
            if report.size != size:
                return
            evaluating = time.perf_counter()
            loss = float(evaluate(report.image[None]))
            paused[0] += time.perf_counter() - evaluating
            if loss <= goal:
                reached["seconds"] = time.perf_counter() - began - paused[0]
                reached["steps"] = report.step
                raise KeyboardInterrupt  # stop: the quality is reached

        stylizers[precision].transfer(CONTENT, STYLE, size=size, steps=steps, optimizer=optimizer, scales=scales,
                                      callback=watch)
        label = f"ours, {optimizer}, {precision}" + (f", {scales} scales from {size // 2} px, {steps} steps each"
                                                     if scales > 1 else "")
        rows[label] = (reached.get("seconds", float("inf")), reached.get("steps"))
    return {"goal": goal, "rows": rows}


# VmHWM, not getrusage's ru_maxrss: Linux starts a child's ru_maxrss at its parent's RSS when it was
# spawned, so every size below this (large) benchmark process's own RSS read as that RSS.
PEAK_SCRIPT = """
import json, sys
import stylekeras
size, steps, options = int(sys.argv[3]), int(sys.argv[4]), json.loads(sys.argv[5])
stylekeras.Stylizer(precision=options.pop("precision")).transfer_batch(
    [sys.argv[1]] * options.pop("photos"), sys.argv[2], size=size, steps=steps, **options)
print(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM")))
"""


def peak_memory_gib(size: int, steps: int = 2, precision: str = "float32", photos: int = 1,
                    **options) -> tuple[float, float]:
    """Peak RSS (GiB) of a fresh process stylizing `photos` at `size`, and its wall time in seconds."""
    arguments = [str(CONTENT), str(STYLE), str(size), str(steps),
                 json.dumps({"precision": precision, "photos": photos, **options})]
    started = time.perf_counter()
    completed = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, *arguments], capture_output=True, text=True,
                               env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)})
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        print(completed.stderr[-2000:], file=sys.stderr)
        return float("nan"), seconds
    return int(completed.stdout.split()[-1]) / 2**20, seconds  # VmHWM is in KiB


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name from `cpuinfo`, with its family and model numbers where the name alone does not
    tell CPU generations apart (a virtual machine's "AMD EPYC"), e.g. "AMD EPYC, family 26, model 2";
    empty where there is no `cpuinfo`."""
    try:
        lines = cpuinfo.read_text().splitlines()
    except OSError:
        return ""
    fields = {}
    for line in lines:
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    name = fields.get("model name", "")
    if any(character.isdigit() for character in name) or not {"cpu family", "model"} <= fields.keys():
        return name
    return f"{name}, family {fields['cpu family']}, model {fields['model']}"


def machine() -> str:
    """What a benchmark's numbers hold on, e.g. "AMD EPYC, family 26, model 2 (flags: avx2, avx512f,
    avx512_bf16), 2 cores"."""
    return f"{cpu_model()} (flags: {features.speed_flags()}), {os.cpu_count()} cores"


def cpu_times(stat: Path = Path("/proc/stat")) -> tuple[int, int] | None:
    """(busy, stolen): clock ticks all CPUs spent running (user, nice, system, irq, softirq) and ticks the
    hypervisor gave to other machines while this one had work ("steal"), since boot, from `stat`'s "cpu"
    line; None where it is unreadable."""
    try:
        fields = [int(value) for value in stat.read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields + [0] * (8 - len(fields))
    return user + nice + system + irq + softirq, steal


def stolen_share(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """Of the CPU time asked for between two `cpu_times` readings, the share the hypervisor took: on a
    virtual machine whose neighbours are busy, a timing runs that much slower than the CPU it names."""
    if before is None or after is None:
        return None
    busy, stolen = after[0] - before[0], after[1] - before[1]
    return stolen / (busy + stolen) if busy + stolen > 0 else 0.0


def percent(share: float | None) -> str:
    """A `stolen_share` for a table: "12 %", or "?" where /proc/stat could not be read."""
    return "?" if share is None else f"{100 * share:.0f} %"


def write_section(title: str, lines: list[str]) -> Path:
    """Replace BENCHMARKS.md's "## TITLE" section by `lines` (whose first line is that title), or add it
    before "## Design choices"."""
    path = ROOT / "BENCHMARKS.md"
    text = path.read_text()
    section = "\n".join(lines) + "\n\n"
    if re.search(rf"^## {re.escape(title)}\n", text, re.M):
        text = re.sub(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", lambda _: section, text, flags=re.S | re.M)
    else:
        text = text.replace("\n## Design choices", "\n" + section + "## Design choices", 1)
    path.write_text(text)
    return path


def main() -> None:
    started = time.perf_counter()
    stylizers = {precision: stylekeras.Stylizer(precision=precision) for precision in ("float32", "mixed")}
    lines = ["# Benchmarks", "", f"Machine: {platform.machine()} {cpu_model()} (flags: {features.speed_flags()}), "
             f"{os.cpu_count()} CPU cores, "
             f"{len(tf.config.list_physical_devices('GPU'))} GPU, TensorFlow {tf.__version__}; "
             f"`python bench/benchmark.py`, {time.strftime('%Y-%m-%d')}. Weights: "
             f"{stylizers['float32'].weights.description}, images: examples/. "
             "Reference: the TensorFlow tutorial's loop (bench/reference.py).", ""]
    # Each round measures the reference, ours in each precision and the convolution's throughput in turn, and
    # each time is the rounds' median (the throughput their best), so a spell of busy neighbours on a virtual
    # machine (its speed can move threefold within minutes) slows one round, not one side.
    rounds = {size: [{"reference": reference_step_time(stylizers["float32"], size),
                      **{precision: our_step_time(stylizer, size) for precision, stylizer in stylizers.items()},
                      "peak float32": conv_throughput(tf.float32), "peak mixed": conv_throughput(tf.bfloat16)}
                     for _ in range(ROUNDS)] for size in (256, 512)}
    peaks = {precision: max(measured[f"peak {precision}"] for each in rounds.values() for measured in each)
             for precision in stylizers}
    lines += [f"Conv throughput (the faster of a plain tf.nn.conv2d and its flipped-kernel form, 3×3, 256→256 "
              f"channels, 128×128; the best of {2 * ROUNDS} rounds): **{peaks['float32']:.0f} "
              f"GFLOP/s** in float32, **{peaks['mixed']:.0f} GFLOP/s** in bfloat16. Seconds per step (Adam, one scale): "
              f"the reference and ours in each precision take turns in {ROUNDS} rounds, each time the rounds' median.", "",
              "| size | reference s/step | ours float32 s/step | ours mixed s/step | speed-up float32 | speed-up mixed "
              "| utilisation float32 | utilisation mixed (of bfloat16 peak) |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for size, measured in rounds.items():
        reference, ours = median_of(measured, "reference"), {precision: median_of(measured, precision) for precision in stylizers}
        deepest = [layer.name for layer in stylizers["float32"].model.layers if "conv" in layer.name][-1]
        flops = step_flops(stylizers["float32"].weights.backbone, size, deepest)
        rates = {precision: flops / seconds / 1e9 for precision, seconds in ours.items()}
        lines.append(f"| {size} | {reference:.3f} | {ours['float32']:.3f} | {ours['mixed']:.3f} | "
                     f"{reference / ours['float32']:.2f}× | {reference / ours['mixed']:.2f}× | "
                     f"{rates['float32']:.0f} GFLOP/s ({100 * rates['float32'] / peaks['float32']:.0f} %) | "
                     f"{rates['mixed']:.0f} GFLOP/s ({100 * rates['mixed'] / peaks['mixed']:.0f} %) |")
        print(lines[-1], flush=True)
    quality = time_to_quality(stylizers)
    lines += ["", f"Time to quality at 256 px: both loops minimise our loss (α, β, γ = {LOSS_WEIGHTS}); the goal is "
              f"{quality['goal']:.4g}, the loss the reference loop's image has after {REFERENCE_STEPS} steps.", "",
              "| run | seconds | steps | vs reference |", "| --- | --- | --- | --- |"]
    reference_seconds = next(iter(quality["rows"].values()))[0]
    for name, (seconds, steps) in quality["rows"].items():
        lines.append(f"| {name} | {seconds:.1f} | {steps} | {reference_seconds / seconds:.2f}× |")
        print(lines[-1], flush=True)
    batch_precision = features.resolve_precision("auto")
    lines += ["", "Photos stylized together (`--batch-size`; copies of the content image), seconds per step per "
              f"photo and the speed-up over one at a time, in the precision `--precision auto` picks here "
              f"({batch_precision}; the three batch sizes taking turns in {ROUNDS} rounds, each time the rounds' "
              "median):", "",
              "| size | precision | batch of 1 | batch of 2 | batch of 4 |", "| --- | --- | --- | --- | --- |"]
    for size in (256, 512):
        batch_rounds = [{photos: our_step_time(stylizers[batch_precision], size, photos, steps=4)
                         for photos in (1, 2, 4)} for _ in range(ROUNDS)]
        per_photo = {photos: median_of(batch_rounds, photos) for photos in (1, 2, 4)}
        lines.append(f"| {size} | {batch_precision} | " + " | ".join(
            f"{seconds:.3f} ({per_photo[1] / seconds:.2f}×)" for seconds in per_photo.values()) + " |")
        print(lines[-1], flush=True)
    lines += ["", "| run | peak RSS (GiB) | wall time of the process (s) |", "| --- | --- | --- |"]
    memory_runs = [(f"{size} px, 2 steps, float32", dict(size=size)) for size in (512, 1024, 2048)]
    memory_runs += [("512 px, 2 steps, batch of 4, mixed, Adam", dict(size=512, precision="mixed", photos=4,
                                                                      optimizer="adam")),
                    ("2048 px, 2 steps, mixed", dict(size=2048, precision="mixed")),
                    ("4096 px, 1 step, --tile 512, mixed", dict(size=4096, steps=1, precision="mixed", tile=512))]
    for label, options in memory_runs:
        gib, seconds = peak_memory_gib(**options)
        lines.append(f"| {label} | {gib:.2f} | {seconds:.0f} |")
        print(lines[-1], flush=True)
    lines += ["", f"The whole benchmark took {(time.perf_counter() - started) / 60:.1f} minutes."]
    path = ROOT / "BENCHMARKS.md"
    kept = re.search(r"^## .*", path.read_text(), re.S | re.M) if path.exists() else None  # not this script's
    path.write_text("\n".join(lines) + "\n" + (f"\n{kept.group(0)}" if kept else ""))
    print(f"wrote {ROOT / 'BENCHMARKS.md'}")


if __name__ == "__main__":
    main()
