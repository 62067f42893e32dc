"""stylekeras against a PyTorch peer doing what jcjohnson/neural-style-pt does, on this machine, both sides
in float32 or both in bfloat16.

    python -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch==2.13.0 numpy   # once; never a dependency
    python bench/peer_benchmark.py --torch-python /tmp/torchvenv/bin/python              # 12–28 minutes
    python bench/peer_benchmark.py --torch-python /tmp/torchvenv/bin/python --precision mixed   # bfloat16

Both sides get the same problem: the same VGG19 weights (whatever `--weights auto` resolves to here), the
same photo and painting at each size, and the same loss — α·L_content + β·Σ w_l L_style,l + γ·L_tv with
stylekeras's default weights, the balanced per-layer w_l and the painting's Gram matrices as our targets
have them (edge ring weighted, `objective.StyleGrams`) included — so a step does the same work on both
(bench/torch_peer.py builds it in torch, and computes its targets from the photo and the painting itself,
as neural-style-pt does, checked against ours).

1. Seconds per step at 256 and 512 px: one loss + gradient, and one L-BFGS step (ours: the library's
   `Objective` and `optimize`; torch: the closure and `torch.optim.LBFGS`), medians after warm-up. Where
   torch's L-BFGS diverges in the warm-up, its steps on a NaN image would store no curvature pairs and so
   skip work a real step does: its L-BFGS with the strong Wolfe line search is timed instead. The
   two sides take turns in `--step-rounds` rounds and each time is the median of the rounds', so a spell of
   busy neighbours on a virtual machine slows one round rather than one side; the per-step ratio is the
   median of each round's own ratio, since a virtual machine's speed can drift by tens of percent within
   minutes and a round's two sides, run back to back, drift least against each other. The share of CPU time the
   hypervisor took ("steal" in /proc/stat) is shown beside each side's times, here and in part 2.
2. Time to quality at 512 px: wall time of the whole command `stylekeras transfer PHOTO PAINTING` (start-up
   included) with the default and fewer `--steps`, against torch's L-BFGS from the photo at 512 px, one
   scale (neural-style-pt's way), whose snapshots every `--snapshot-every` steps are scored as they come;
   each side's time is that of its first result meeting the quality goal of QUALITY.md (style ≥ 0.65 with
   structure ≥ 0.55, `bench/quality.py`), and of its first reaching the default command's style score.
   Torch's L-BFGS runs `--snapshot-every` steps per call and cannot report between them, so its first
   `--trace-evaluations` loss evaluations are saved too and, up to the first snapshot that meets the goal,
   scored: the first that meets it and could be a step's result (every evaluation without a line search;
   with one, each that lowers the loss below every earlier one, which a step's result does) is torch's time
   to the goal, not rounded up to a snapshot.
   Torch's L-BFGS has no safeguard: it may diverge (a NaN image, where it is stopped) or overshoot and never
   recover, and where it does reach the goal it may be slower than torch's L-BFGS with its strong Wolfe
   line search, which runs too; the peer's time is the faster of the two.
   Below them, neural-style-pt's own default run (its loss weights, from noise, 1000 iterations) as
   bench/neural_style_reference.py made it for the pair, when it has (about 35 minutes: not rerun here).
3. The goal, taking turns: part 2 runs all of ours, then all of torch's, so a machine whose speed drifts
   within minutes can favour either side. Our first command to meet the goal and torch's faster run up to
   its first result that met it (that evaluation or snapshot, rescored) then take turns in `--rounds`
   rounds; the ratio is the median of the rounds'.
In float32 on a CPU where `--precision auto` picks bfloat16 (AVX512-BF16 or AMX), parts 2 and 3 also run
our commands with `--precision auto`: each side as it runs by default (neural-style-pt has no bfloat16),
what a user choosing between the two sees on this machine.
With `--precision mixed` (or `auto` where it picks bfloat16, as on CPUs with AVX512-BF16 or AMX) our side
runs with `--precision mixed` and torch runs its network under `torch.autocast` in bfloat16, each with its
losses in float32. Writes the section "## PyTorch peer on CPU" of BENCHMARKS.md, or "## PyTorch peer in
bfloat16 on CPU", CPU naming this machine's, so each CPU keeps its own (bench/benchmark.py keeps them); with
another `--photo` or `--painting` than tubingen × starry the title ends in the pair's file names, so each
pair keeps its own too (the quality benchmark's pictures in ../shared/images also show neural-style-pt's
default run on the pair where bench/neural_style_reference.py has made it):

    python bench/peer_benchmark.py --torch-python /tmp/torchvenv/bin/python --photo ../shared/images/chicago.jpg --painting ../shared/images/wave.jpg
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import stylekeras  # noqa: E402
from stylekeras import features, stylize  # noqa: E402
from stylekeras.defaults import DEFAULT_STEPS, PRECISIONS  # noqa: E402
from stylekeras.image_io import load_image  # noqa: E402
from stylekeras.objective import Objective  # noqa: E402
from benchmark import cpu_model, cpu_times, machine, percent, stolen_share, write_section  # noqa: E402
from quality import scores  # noqa: E402
from quality_benchmark import PAINTINGS, PHOTOS, neural_style_record  # noqa: E402

OUT = ROOT / "bench" / "out" / "peer"
SHARED = ROOT.parent / "shared" / "images"
DEFAULT_PHOTO, DEFAULT_PAINTING = SHARED / "tubingen.jpg", SHARED / "starry_night.jpg"
STYLE_GOAL, STRUCTURE_GOAL = 0.65, 0.55


def write_problem(stylizer: stylekeras.Stylizer, photo: Path, painting: Path, size: int, **extra) -> tuple[Path, tuple]:
    """The problem both sides solve, as torch_peer.py reads it; and ours, built from the same arrays."""
    settings = stylize.TransferSettings(size=size)
    content = load_image(photo, size)
    style = load_image(painting, size)
    targets = stylizer.targets(content, [style], normalization=settings.style_normalization)
    loss_weights = settings.loss_weights(*content.shape[:2])
    convs = [layer for layer in stylizer.model.layers if isinstance(layer, keras.layers.Conv2D)]
    kernels = {"conv_layers": np.array([conv.name for conv in convs])}
    for conv in convs:  # float32 for torch, also where our model keeps them in bfloat16 (`--precision mixed`)
        kernels[f"kernel_{conv.name}"], kernels[f"bias_{conv.name}"] = (
            np.asarray(value, np.float32) for value in conv.get_weights())
    line_search = f"_{extra['line_search']}" if extra.get("line_search") else ""  # part 1 may need both files
    path = OUT / f"problem_{size}{line_search}.npz"
    np.savez(path, content=content, style=style, style_layers=np.array(stylizer.style_layers),
             content_layer=stylizer.content_layers[0], layer_weights=np.array(
                 [float(np.squeeze(targets.layer_weights[name])) for name in stylizer.style_layers]),
             alpha=loss_weights[0], beta=loss_weights[1], gamma=loss_weights[2], threads=os.cpu_count(),
             precision=stylizer.precision,
             **{f"gram_{name}": np.asarray(gram[0]) for name, gram in targets.styles[0].grams.items()},
             **kernels, **extra)
    return path, (settings, content, targets, loss_weights)


def our_step_times(stylizer: stylekeras.Stylizer, ours: tuple, repeats: int, warmup: int) -> dict:
    settings, content, targets, loss_weights = ours
    image = tf.Variable(content[None])
    objective = Objective(stylizer.model, targets, loss_weights, image)
    initial = float(objective()[0]["total"][0])
    objective()
    evaluations = []
    for _ in range(repeats):
        started = time.perf_counter()
        parts, gradient = objective()
        float(parts["total"][0])
        evaluations.append(time.perf_counter() - started)
    optimizer = stylize.make_optimizer(settings, image)
    stamps, calls = [], [0]  # after each step; the first `warmup` (tracing, the first steps at a scale) are not timed

    def counted(step: int):
        calls[0] += 1
        return objective(step)

    stylize.optimize(image, counted, optimizer, range(warmup + repeats),
                     lambda parts: stamps.append((calls[0], time.perf_counter())))
    (calls_before, before), (calls_after, after) = stamps[warmup - 1], stamps[-1]
    return {"initial_loss": initial, "loss_and_gradient": float(np.median(evaluations)),
            "lbfgs_step": (after - before) / repeats, "evaluations": (calls_after - calls_before) / repeats}


def step_rounds(count: int, ours: Callable[[], dict], theirs: Callable[[str | None], dict], size: int
                ) -> tuple[list[tuple[dict, dict]], str | None]:
    """Part 1's `count` rounds at `size` px, our steps' timings (`ours()`) and torch's (`theirs(line_search)`)
    in turn, and the line search torch's were timed with: none, unless its L-BFGS without one diverges (its
    image not finite); then its strong Wolfe one is timed in every round (the docstring, part 1)."""
    rounds, line_search = [], None
    while len(rounds) < count:
        mine, timed = ours(), theirs(line_search)
        if not timed["finite"] and line_search is None:  # the rounds before timed the other L-BFGS: not kept
            line_search, rounds = "strong_wolfe", []
            timed = theirs(line_search)
        if not timed["finite"]:
            sys.exit(f"error: at {size} px torch's L-BFGS with its strong Wolfe line search diverged too")
        rounds.append((mine, timed))
    return rounds, line_search


def repeats_at(size: int, repeats: int) -> int:
    """How many evaluations and steps part 1 times per round at `size` px: `repeats` at 512 px and more at
    smaller sizes, in proportion to the pixels, so a round lasts about as long at every size (five 256 px
    steps, 1.5 s, let one noisy second swing the ratio either way)."""
    return max(repeats, round(repeats * (512 / size) ** 2))


def stolen_time(measure) -> dict:
    """`measure()`'s timings, with the share of CPU time stolen while it ran as "stolen"
    (`benchmark.stolen_share`)."""
    before = cpu_times()
    timings = measure()
    return timings | {"stolen": stolen_share(before, cpu_times())}


def median_round(rounds: list[dict]) -> dict:
    """One side's timings over the rounds: the median of each, and the mean share of stolen CPU time."""
    shares = [timings["stolen"] for timings in rounds]
    return {"loss_and_gradient": float(np.median([timings["loss_and_gradient"] for timings in rounds])),
            "lbfgs_step": float(np.median([timings["lbfgs_step"] for timings in rounds])),
            "evaluations": float(np.median([timings["evaluations"] for timings in rounds])),
            "stolen": None if None in shares else float(np.mean(shares))}


def paired_step_ratio(rounds: list[tuple[dict, dict]]) -> tuple[float, float, float]:
    """Torch's L-BFGS step over ours in each round of (ours, torch's) timings: the median and the range."""
    ratios = [theirs["lbfgs_step"] / mine["lbfgs_step"] for mine, theirs in rounds]
    return float(np.median(ratios)), min(ratios), max(ratios)


def run_torch(torch_python: str, problem: Path, mode: str) -> dict:
    out = problem.with_name(f"torch_{mode}_{problem.stem}.json")
    subprocess.run([torch_python, str(ROOT / "bench" / "torch_peer.py"), str(problem), mode, str(out)], check=True)
    return json.loads(out.read_text())


def meets_goal(row: dict) -> bool:
    return row["style_progress"] >= STYLE_GOAL and row["structure"] >= STRUCTURE_GOAL


def our_command(args: argparse.Namespace, steps: int, precision: str | None = None) -> tuple[float, dict]:
    """Wall time of the whole command `stylekeras transfer` at 512 px with `--steps steps` and `--precision
    precision` (default: the benchmark's `--precision`), start-up included, and its scores with the share of
    CPU time stolen meanwhile ("stolen", `benchmark.stolen_share`)."""
    precision = precision or args.precision
    result = OUT / f"ours_512_{steps}_{precision}.png"
    result.unlink(missing_ok=True)
    started, before = time.time(), cpu_times()
    subprocess.run([sys.executable, "-m", "stylekeras", "transfer", str(args.photo), str(args.painting), "-o",
                    str(result), "--size", "512", "--steps", str(steps), "--precision", precision, "--quiet"],
                   check=True, stdout=subprocess.DEVNULL)
    seconds, stolen = time.time() - started, stolen_share(before, cpu_times())
    return seconds, scores(str(args.photo), str(args.painting), str(result)) | {"stolen": stolen}


def time_to_quality(stylizer: stylekeras.Stylizer, args: argparse.Namespace) -> list[str]:
    """Part 2, as table lines: our command at each of `--our-steps` (the default's among them), then torch's
    L-BFGS with scored snapshots; and each side's time to the goal and to the default's style score."""
    lines = ["", f"Time to quality at 512 px (the goal: style ≥ {STYLE_GOAL} with structure ≥ {STRUCTURE_GOAL}, "
             "bench/quality.py), wall time from the process's start; torch's snapshots are scored every "
             f"{args.snapshot_every} steps and shown every 25 and where it first meets the goal, and before that "
             "every loss evaluation that could be a step's result (with a line search, each that lowers the loss "
             "below every earlier one), so torch's time to the goal is not rounded up to a snapshot (torch's L-BFGS "
             "without a line search, neural-style-pt's, then with its strong Wolfe line search, its steps with the "
             "loss evaluations they took); the last column is "
             "the share of the CPU time asked for that the hypervisor gave to other machines meanwhile (each of our "
             "commands; torch's whole run):", "",
             "| run | steps | seconds | style | structure | meets the goal | CPU time stolen |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    step_counts = sorted({int(steps) for steps in args.our_steps.split(",")} | {DEFAULT_STEPS})
    # Where `auto` picks bfloat16, our commands run a second time as a user's do by default: against torch in
    # float32, as neural-style-pt runs, that is what a user choosing between the two would see.
    precisions = [args.precision] + (["auto"] if args.precision == "float32" and
                                     features.resolve_precision("auto") != "float32" else [])
    ours = {}
    for precision in precisions:
        ours[precision] = []
        for steps in step_counts:
            seconds, row = our_command(args, steps, precision)
            schedule = " + ".join(str(count) for count in stylize.TransferSettings(steps=steps).scale_steps(512))
            name = "the default command" if steps == DEFAULT_STEPS else f"`--steps {steps}`"
            name += ", `--precision auto` (bfloat16 here; " if precision == "auto" else " ("
            ours[precision].append((seconds, row))
            lines.append(f"| stylekeras, {name}L-BFGS, 256 then 512 px) | {schedule} | {seconds:.0f} | "
                         f"{row['style_progress']:.3f} | {row['structure']:.3f} | "
                         f"{'yes' if meets_goal(row) else 'no'} | {percent(row['stolen'])} |")
            print(lines[-1], flush=True)
    like_for_like = ours[args.precision]
    default_style = like_for_like[step_counts.index(DEFAULT_STEPS)][1]["style_progress"]
    time_lines = [lambda theirs, peer: _time_to("the goal", like_for_like, theirs, meets_goal, peer),
                  lambda theirs, peer: _time_to(f"the default command's style score ({default_style:.3f})",
                                                like_for_like, theirs,
                                                lambda row: row["style_progress"] >= default_style, peer)]
    if "auto" in ours:
        time_lines.append(lambda theirs, peer: _time_to(
            "the goal, each side as it runs by default (ours `--precision auto`: bfloat16 here; torch float32)",
            ours["auto"], theirs, meets_goal, peer))
    our_goals = {}  # per precision, the fewest steps that met the goal
    for precision, runs in ours.items():
        steps = next((steps for steps, (_, row) in zip(step_counts, runs) if meets_goal(row)), None)
        if steps is not None:
            our_goals[precision] = steps
    summary, reached = [], []  # reached: (seconds, goal, peer) of each torch run that met the goal
    # neural-style-pt's L-BFGS, which may diverge on the problem or overshoot and never recover, and torch's
    # own line search: the peer's time is the faster of the two.
    for line_search, peer, described in ((None, "torch", "without a line search (neural-style-pt's)"),
                                         ("strong_wolfe", "torch (strong Wolfe)", "with its strong Wolfe line search")):
        rows, theirs, diverged, traced_note, goal = torch_lbfgs(stylizer, args, line_search)
        lines += rows
        if diverged is not None:
            summary.append(f"- Torch's L-BFGS {described} diverged: the image was NaN after {diverged['steps']} "
                           f"steps ({diverged['seconds']:.0f} s).")
            continue
        summary += [line(theirs, peer) for line in time_lines] + ([traced_note] if traced_note else [])
        if goal is not None:
            reached.append((next(seconds for seconds, row in theirs if meets_goal(row)), goal, peer))
    if reached and args.precision in our_goals:
        _, goal, peer = min(reached, key=lambda run: run[0])
        summary += goal_in_turns(stylizer, args, our_goals, goal, peer)
    lines += ["", *summary]
    if args.precision != "float32":  # the record ran in float32; the float32 section shows it
        return lines
    names = (_name_of(args.photo, PHOTOS), _name_of(args.painting, PAINTINGS))
    if None in names:
        print("no neural-style default run to show: the pictures are not the quality benchmark's (its files "
              f"are in {SHARED})")
        return lines
    pair = "-".join(names)
    reference = neural_style_record(pair, 512, stylizer.weights.description)
    if reference is None:
        print(f"no neural-style default run of {pair} with these weights: python bench/neural_style_reference.py "
              f"--pairs {pair} …")
        return lines
    machine = reference.get("machine", "a machine it did not record")
    lines += ["", "neural-style-pt's own defaults on the pair (from noise, its loss weights, 1000 iterations; "
              f"bench/neural_style_reference.py on {machine}, not rerun here: its seconds are that machine's):", "",
              "| run | steps | seconds | style | structure | meets the goal |", "| --- | --- | --- | --- | --- | --- |"]
    for row in reference["snapshots"]:
        lines.append(f"| torch, neural-style-pt's defaults | {row['iterations']} | "
                     f"{'' if row['seconds'] is None else round(row['seconds'])} | "
                     f"{row['style_progress']:.3f} | {row['structure']:.3f} | {'yes' if meets_goal(row) else 'no'} |")
    return lines


def torch_lbfgs(stylizer: stylekeras.Stylizer, args: argparse.Namespace, line_search: str | None
                ) -> tuple[list[str], list[tuple[float, dict]], dict | None, str | None, dict | None]:
    """Torch's L-BFGS from the photo at 512 px (with torch's `line_search`, or none as neural-style-pt), its
    snapshots scored: the table rows (every 25 steps, where it first meets the goal and where it diverged),
    (seconds, scores) per snapshot and per traced evaluation that met the goal before them, where the image
    turned NaN ("steps", "seconds") or None, a line saying what the traced evaluations found (or None), and
    where it first met the goal (`torch_to_goal`'s `goal`) or None."""
    started, before = time.time(), cpu_times()
    run = run_torch(args.torch_python, torch_problem(stylizer, args, line_search, args.torch_steps,
                                                     args.trace_evaluations), "lbfgs")
    snapshots = run["snapshots"]
    stolen = percent(stolen_share(before, cpu_times()))
    name = f"torch L-BFGS{' with strong Wolfe line search' if line_search else ''} from the photo, 1 scale"
    rows, theirs, shown, diverged, goal_evaluations, goal_steps = [], [], 0, None, None, None
    for calls, snapshot in enumerate(snapshots, start=1):
        path = Path(snapshot["path"]).with_suffix(".png")
        pixels = np.load(snapshot["path"])
        seconds = snapshot["time"] - started
        if not np.isfinite(pixels).all():
            diverged = {"steps": snapshot["steps"], "seconds": seconds}
            rows.append(f"| {name} | {snapshot['steps']} | {seconds:.0f} | NaN | NaN | no | {stolen} |")
            break
        stylekeras.save_image(pixels, path)
        row = scores(str(args.photo), str(args.painting), str(path))
        first_to_goal = meets_goal(row) and not any(meets_goal(earlier) for _, earlier in theirs)
        if first_to_goal:  # a call may end early with a line search: the steps that make as many calls
            goal_evaluations, goal_steps = snapshot["evaluations"], calls * args.snapshot_every
        theirs.append((seconds, row))
        if snapshot["steps"] // 25 > shown // 25 or first_to_goal:
            shown = snapshot["steps"]
            steps = snapshot["steps"] if not line_search else f"{snapshot['steps']} ({snapshot['evaluations']} evaluations)"
            rows.append(f"| {name} | {steps} | {seconds:.0f} | {row['style_progress']:.3f} | {row['structure']:.3f} | "
                        f"{'yes' if meets_goal(row) else 'no'} | {stolen} |")
            print(rows[-1], flush=True)
    if not goal_evaluations:
        return rows, theirs, diverged, None, None
    goal = {"line_search": line_search, "steps": goal_steps, "evaluation": None}
    traced = _traced_goal(run["evaluations"], started, args, line_search, goal_evaluations)
    if traced is None:
        return rows, theirs, diverged, ("- None of torch's loss evaluations before its first snapshot to meet the "
                                        "goal met it: that snapshot's time is torch's time to the goal."), goal
    seconds, row, evaluation = traced
    line = (f"| {name}, the first loss evaluation to meet the goal | evaluation {evaluation} | {seconds:.0f} | "
            f"{row['style_progress']:.3f} | {row['structure']:.3f} | yes | {stolen} |")
    rows.insert(next(index for index, shown_row in enumerate(rows) if " | yes | " in shown_row), line)
    print(line, flush=True)
    return rows, sorted(theirs + [(seconds, row)], key=lambda pair: pair[0]), diverged, (
        f"- Torch's loss evaluation {evaluation} met the goal before its snapshot did: its time is torch's time "
        "to the goal."), goal | {"evaluation": evaluation}


def torch_problem(stylizer: stylekeras.Stylizer, args: argparse.Namespace, line_search: str | None, steps: int,
                  trace_evaluations: int) -> Path:
    """The 512 px problem for torch's L-BFGS from the photo (`line_search` as torch names it, or None):
    `steps` steps, snapshots every `--snapshot-every`, its first `trace_evaluations` evaluations saved."""
    problem, _ = write_problem(stylizer, args.photo, args.painting, 512, steps=steps,
                               snapshot_every=args.snapshot_every, trace_evaluations=trace_evaluations,
                               **({"line_search": line_search} if line_search else {}))
    return problem


def torch_to_goal(stylizer: stylekeras.Stylizer, args: argparse.Namespace, goal: dict) -> tuple[float, dict]:
    """Torch's L-BFGS run again only as far as the point where it first met the goal (`goal`: its "line_search",
    the "steps" that run to that snapshot and the traced "evaluation" before it, or None for the snapshot): the
    wall time from the process's start to that point, and its scores."""
    evaluation = goal["evaluation"]
    problem = torch_problem(stylizer, args, goal["line_search"], goal["steps"], evaluation or 0)
    started = time.time()
    run = run_torch(args.torch_python, problem, "lbfgs")
    point = run["evaluations"][evaluation - 1] if evaluation else run["snapshots"][-1]
    path = Path(point["path"]).with_suffix(".png")
    stylekeras.save_image(np.load(point["path"]), path)
    return point["time"] - started, scores(str(args.photo), str(args.painting), str(path))


def goal_in_turns(stylizer: stylekeras.Stylizer, args: argparse.Namespace, our_steps: dict[str, int], goal: dict,
                  peer: str) -> list[str]:
    """Part 3, as lines: our command with `--steps our_steps[precision]` at each precision of `our_steps` (the
    benchmark's, and "auto" where part 2 ran it too) and torch to its `goal` (`torch_to_goal`), taking turns in
    `--rounds` rounds, each time with the result's scores, and per precision the median of the rounds' ratios."""
    where = f"evaluation {goal['evaluation']}" if goal["evaluation"] else "first snapshot to meet it"
    named = {precision: f"`--steps {steps}`" + (" `--precision auto`" if precision == "auto" else "")
             for precision, steps in our_steps.items()}
    lines = ["", f"The goal, taking turns: our {' and our '.join(named.values())} and {peer} to its {where} (the "
             f"first results above to meet the goal), {args.rounds} rounds, wall time from each process's start:",
             "", "| round | " + " | ".join(f"ours, {name} (s) | style / structure" for name in named.values())
             + " | torch (s) | style / structure | " + " | ".join(f"torch / ours, {name}" for name in named.values())
             + " |", "| --- " * (2 * len(named) + 3 + len(named)) + "|"]
    ratios = {precision: [] for precision in our_steps}
    for index in range(1, args.rounds + 1):
        mine = {precision: our_command(args, steps, precision) for precision, steps in our_steps.items()}
        theirs, their_row = torch_to_goal(stylizer, args, goal)
        for precision, (seconds, _) in mine.items():
            ratios[precision].append(theirs / seconds)
        lines.append(f"| {index} | " + " | ".join(
            f"{seconds:.1f} | {row['style_progress']:.3f} / {row['structure']:.3f}" for seconds, row in mine.values())
            + f" | {theirs:.1f} | {their_row['style_progress']:.3f} / {their_row['structure']:.3f} | "
            + " | ".join(f"{ratios[precision][-1]:.2f}×" for precision in our_steps) + " |")
        print(lines[-1], flush=True)
    lines.append("")
    for precision, name in named.items():
        rounds = ratios[precision]
        lines.append(f"- To the goal, taking turns: {peer} / ours ({name}) **{float(np.median(rounds)):.2f}×** "
                     f"(the rounds' median; {min(rounds):.2f}–{max(rounds):.2f}×).")
    return lines


def _traced_goal(evaluations: list[dict], started: float, args: argparse.Namespace, line_search: str | None,
                 until: int) -> tuple[float, dict, int] | None:
    """The first of torch's traced loss evaluations before the first snapshot to meet the goal (taken after
    `until` evaluations) that meets the goal and could be a step's result: every evaluation without a line
    search (each is the last step's result); with one, those whose loss is below every earlier one (a step's
    accepted point is; a rejected trial rarely) — so the time is never later than torch's. (seconds, scores,
    evaluation number), or None."""
    # With a line search the snapshot's own point is its last evaluation; without one it is not evaluated
    # until the next call, and the `until`-th evaluation is the step before it.
    last = until - 1 if line_search else until
    lowest = np.inf
    for evaluation in evaluations:
        if evaluation["evaluation"] > last or not np.isfinite(evaluation["loss"]):
            return None
        if line_search and evaluation["loss"] >= lowest:
            continue
        lowest = min(lowest, evaluation["loss"])
        path = Path(evaluation["path"]).with_suffix(".png")
        stylekeras.save_image(np.load(evaluation["path"]), path)
        row = scores(str(args.photo), str(args.painting), str(path))
        if meets_goal(row):
            return evaluation["time"] - started, row, evaluation["evaluation"]
    return None


def _time_to(what: str, ours: list[tuple[float, dict]], theirs: list[tuple[float, dict]], reached, peer: str) -> str:
    """One line: the first time our result and the `peer`'s reached `what` (`reached(row)`), and their ratio —
    a lower bound, the peer's whole run, where only ours reached it."""
    mine = next((seconds for seconds, row in ours if reached(row)), None)
    their = next((seconds for seconds, row in theirs if reached(row)), None)
    if mine is not None and their is None and theirs:
        ran = max(seconds for seconds, _ in theirs)
        return (f"- To {what}: stylekeras {mine:.0f} s, {peer} not reached in its {ran:.0f} s — {peer} / ours "
                f"**more than {ran / mine:.2f}×**.")
    if mine is None or their is None:
        return (f"- To {what}: stylekeras {'not reached' if mine is None else f'{mine:.0f} s'}, {peer} "
                f"{'not reached' if their is None else f'{their:.0f} s'}.")
    return f"- To {what}: stylekeras {mine:.0f} s, {peer} {their:.0f} s — {peer} / ours **{their / mine:.2f}×**."


def section_title(precision: str, cpu: str, photo: Path, painting: Path) -> str:
    """The BENCHMARKS.md section a run writes: one per precision and CPU (CPUs of one machine kind differ),
    and one per pair of pictures besides tubingen × starry, so that another pair adds its own section."""
    title = f"PyTorch peer{'' if precision == 'float32' else ' in bfloat16'} on {cpu or 'an unnamed CPU'}"
    return title + ("" if _default_pair(photo, painting) else f", {photo.name} × {painting.name}")


def _default_pair(photo: Path, painting: Path) -> bool:
    return (photo.resolve(), painting.resolve()) == (DEFAULT_PHOTO.resolve(), DEFAULT_PAINTING.resolve())


def _name_of(path: Path, named: dict[str, Path]) -> str | None:
    """The quality benchmark's name for a picture (tubingen, starry, …)."""
    return next((name for name, known in named.items() if known.resolve() == path.resolve()), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--torch-python", required=True, help="python of a venv with torch (benchmark-only peer)")
    parser.add_argument("--photo", type=Path, default=DEFAULT_PHOTO)
    parser.add_argument("--painting", type=Path, default=DEFAULT_PAINTING)
    parser.add_argument("--sizes", default="256,512")
    parser.add_argument("--repeats", type=int, default=5,
                        help="evaluations and L-BFGS steps timed per round at 512 px (more at smaller sizes)")
    parser.add_argument("--step-rounds", type=int, default=5, help="rounds of part 1, ours and torch's in turn")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of part 3, ours and torch's in turn")
    parser.add_argument("--warmup", type=int, default=10, help="L-BFGS steps before the timed ones")
    parser.add_argument("--torch-steps", type=int, default=200, help="torch L-BFGS steps at most, for time to quality")
    parser.add_argument("--snapshot-every", type=int, default=5, help="torch steps between scored snapshots")
    parser.add_argument("--trace-evaluations", type=int, default=40,
                        help="torch's first loss evaluations saved, to find its time to the goal between snapshots")
    parser.add_argument("--our-steps", default="2,4,6,10,20,30",
                        help="--steps of our command to time besides the default's (the first scale's steps)")
    parser.add_argument("--precision", choices=PRECISIONS, default="float32",
                        help="both sides in float32, or both in bfloat16 (mixed; auto: mixed where bfloat16 is fast here)")
    parser.add_argument("--steps-only", action="store_true",
                        help="only part 1 (seconds per step); part 2 stays as BENCHMARKS.md has it")
    args = parser.parse_args()
    args.precision = features.resolve_precision(args.precision)
    OUT.mkdir(parents=True, exist_ok=True)
    stylizer = stylekeras.Stylizer(precision=args.precision)
    if args.precision == "float32":
        command, precision = "", "float32"
    else:
        command = " --precision mixed"
        precision = ("bfloat16: ours `--precision mixed`, torch's network under `torch.autocast` in bfloat16, "
                     "both with the losses in float32")
    if not _default_pair(args.photo, args.painting):
        command += f" --photo {args.photo} --painting {args.painting}"
    title = section_title(args.precision, cpu_model(), args.photo, args.painting)
    lines = [f"## {title}", "",
             f"`python bench/peer_benchmark.py{command}`, {time.strftime('%Y-%m-%d')}: {machine()}; {precision}; weights {stylizer.weights.description}; "
             f"{args.photo.name} × {args.painting.name}. Torch {{torch}}: neural-style-pt's way (the same network, "
             "losses and loss weights; `torch.optim.LBFGS`, history 100).", "",
             f"L-BFGS steps timed after {args.warmup} from the photo; each may evaluate the loss more than once "
             "(our safeguard shortens steps that raise it; torch's L-BFGS does so only with a line search), and "
             "the evaluations a step are in brackets. Ours and torch's take turns in "
             f"{args.step_rounds} rounds of {args.repeats} evaluations and steps each at 512 px, more where a step is "
             "shorter (`repeats_at`: 4× as many at 256 px); every time is the median of the rounds', the per-step "
             "ratio the median of each round's own (its range in brackets: the machine's speed drifts within "
             "minutes, a round's two sides least), and the last column is the share of the CPU time asked for "
             "that the hypervisor gave to other machines (the rounds' mean, ours / torch's).", "",
             "| size | ours: loss + gradient (s) | torch | ours: L-BFGS step (s) (evaluations) | torch "
             "| per step, torch / ours | CPU time stolen |", "| --- | --- | --- | --- | --- | --- | --- |"]
    diverged = []
    for size in [int(size) for size in args.sizes.split(",")]:
        repeats = repeats_at(size, args.repeats)
        problem, ours = write_problem(stylizer, args.photo, args.painting, size, repeats=repeats,
                                      warmup=args.warmup)
        problems = {None: problem}

        def torch_steps(line_search: str | None) -> dict:
            if line_search not in problems:
                problems[line_search], _ = write_problem(stylizer, args.photo, args.painting, size, repeats=repeats,
                                                         warmup=args.warmup, line_search=line_search)
            return stolen_time(lambda: run_torch(args.torch_python, problems[line_search], "step"))

        rounds, line_search = step_rounds(
            args.step_rounds, lambda: stolen_time(lambda: our_step_times(stylizer, ours, repeats, args.warmup)),
            torch_steps, size)
        if line_search:
            diverged.append(size)
        mine, theirs = rounds[0]
        # Not the same problem: no comparison. bfloat16's rounding differs between the two libraries' kernels.
        tolerance = 1e-3 if args.precision == "float32" else 2e-2
        if abs(theirs["initial_loss"] / mine["initial_loss"] - 1) > tolerance:
            sys.exit(f"error: at {size} px torch's loss {theirs['initial_loss']:.6g} != ours {mine['initial_loss']:.6g}")
        if theirs["gram_difference"] > tolerance:
            sys.exit(f"error: at {size} px torch's style targets differ from ours by {theirs['gram_difference']:.3g}")
        lines[2] = lines[2].replace("{torch}", theirs["torch"])
        ratio, low, high = paired_step_ratio(rounds)
        mine, theirs = (median_round([side[index] for side in rounds]) for index in (0, 1))
        lines.append(f"| {size} | {mine['loss_and_gradient']:.3f} | {theirs['loss_and_gradient']:.3f} | "
                     f"{mine['lbfgs_step']:.3f} ({mine['evaluations']:.1f}) | {theirs['lbfgs_step']:.3f} "
                     f"({theirs['evaluations']:.1f}{', strong Wolfe' if size in diverged else ''}) | "
                     f"{ratio:.2f}× ({low:.2f}–{high:.2f}×) | {percent(mine['stolen'])} / "
                     f"{percent(theirs['stolen'])} |")
        print(lines[-1], flush=True)
    if diverged:
        lines += ["", f"- Torch's L-BFGS without a line search (neural-style-pt's) diverged in the warm-up at "
                  f"{', '.join(map(str, diverged))} px (a NaN image): the steps timed there are those of torch's "
                  "L-BFGS with its strong Wolfe line search."]
    if not args.steps_only:
        lines += time_to_quality(stylizer, args)
    elif found := re.search(rf"^## {re.escape(title)}\n.*?(\nTime to quality at 512 px.*?)(?=^## |\Z)",
                            (ROOT / "BENCHMARKS.md").read_text(), re.S | re.M):  # keep the section's last part 2
        lines += found.group(1).rstrip("\n").split("\n")
    print(f"wrote {write_section(title, lines)}")


if __name__ == "__main__":
    main()
