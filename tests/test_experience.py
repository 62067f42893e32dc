"""TensorBoard, run reports, batches, progress pictures, config files, CLI polish and generated docs."""

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from typer.testing import CliRunner

from stylekeras.cli import app
from stylekeras.stylize import DEFAULT_STEPS, DEFAULT_STYLE_NORMALIZATION, DEFAULT_STYLE_WEIGHTS
from stylekeras.report import read_report

ROOT = Path(__file__).parents[1]
runner = CliRunner()
TINY = ["--size", "32", "--steps", "4", "--weights", "random", "--quiet"]


def _run(*args):
    return runner.invoke(app, [str(arg) for arg in args])


def _events(logdir: Path) -> dict[str, list]:
    values = {}
    for path in logdir.glob("events.out.tfevents.*"):
        for record in tf.data.TFRecordDataset(str(path)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                values.setdefault(value.tag, []).append((event.step, value))
    return values


def test_tensorboard_logs_scalars_images_and_settings(tmp_path, content_path, style_path):
    result = _run("transfer", content_path, style_path, "-o", tmp_path / "out.png", *TINY, "--logdir",
                  tmp_path / "logs", "--save-every", "2", "--report", tmp_path / "report.json")
    assert result.exit_code == 0, result.output
    events = _events(tmp_path / "logs")
    history = json.loads((tmp_path / "report.json").read_text())["history"]
    totals = [float(tf.make_ndarray(value.tensor)) for _, value in events["loss/total"]]
    np.testing.assert_allclose(totals, history["total"], rtol=1e-6)
    assert {"loss/content", "loss/style", "loss/tv", "loss/style/block1_conv1", "loss/style/block5_conv1"} <= set(events)
    assert [step for step, _ in events["image"]] == [2, 4]
    assert events["image"][0][1].metadata.plugin_data.plugin_name == "images"
    settings_text = tf.make_ndarray(events["settings"][0][1].tensor).item().decode()
    assert f'"style_weight": {DEFAULT_STYLE_WEIGHTS[DEFAULT_STYLE_NORMALIZATION]}' in settings_text


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp"])
def test_every_image_carries_its_report(tmp_path, content_path, style_path, suffix):
    output = tmp_path / f"out{suffix}"
    assert _run("transfer", content_path, style_path, "-o", output, *TINY, "--style-weight", "123").exit_code == 0
    report = read_report(output)
    assert report["settings"]["style_weight"] == 123.0 and report["settings"]["steps"] == 4
    assert report["model"]["backbone"] == "vgg19" and report["model"]["weights"].startswith("random")
    assert report["steps_done"] == 4 and report["seconds"] > 0 and set(report["versions"]) >= {"tensorflow", "keras"}
    assert set(report["final_losses"]) >= {"total", "content", "style", "tv"}
    shown = _run("info", output)
    assert shown.exit_code == 0 and json.loads(shown.stdout) == report


def test_report_json_has_the_loss_history(tmp_path, content_path, style_path):
    assert _run("transfer", content_path, style_path, "-o", tmp_path / "o.png", *TINY, "--report",
                tmp_path / "r.json").exit_code == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert len(report["history"]["total"]) == 4 and report["final_losses"]["total"] == report["history"]["total"][-1]


def test_from_image_reruns_the_same_settings_to_the_same_image(tmp_path, content_path, style_path):
    first = tmp_path / "first.png"
    assert _run("transfer", content_path, style_path, "-o", first, *TINY, "--init", "noise", "--seed", "3",
                "--tv-weight", "7").exit_code == 0
    again = tmp_path / "again.png"
    assert _run("transfer", "--from", first, "-o", again, "--quiet").exit_code == 0
    np.testing.assert_array_equal(np.asarray(Image.open(again)), np.asarray(Image.open(first)))
    changed = tmp_path / "changed.png"
    assert _run("transfer", "--from", first, "-o", changed, "--tv-weight", "0", "--quiet").exit_code == 0
    assert read_report(changed)["settings"]["tv_weight"] == 0.0 and read_report(changed)["settings"]["seed"] == 3


def test_info_and_from_refuse_images_without_a_report(tmp_path, content_path):
    result = _run("info", content_path)
    assert result.exit_code == 2 and "carries no stylekeras report" in result.stderr
    result = _run("transfer", "--from", content_path)
    assert result.exit_code == 2 and "carries no stylekeras report" in result.output


def test_batch_writes_each_photo_skips_failures_and_existing(tmp_path, content_path, style_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("a.png", "b.png"):
        (photos / name).write_bytes(content_path.read_bytes())
    (photos / "broken.jpg").write_text("not an image")
    out = tmp_path / "out"
    result = _run("transfer", photos, style_path, "-o", out, *TINY, "--json")
    assert result.exit_code == 1  # one photo failed while running
    summary = json.loads(result.stdout)
    assert [Path(p).name for p in summary["written"]] == ["a_style.png", "b_style.png"]
    assert summary["failed"][0]["content"].endswith("broken.jpg") and "not an image" in summary["failed"][0]["error"]
    assert "error: content image" in result.stderr and "skipped" in result.stderr
    (photos / "broken.jpg").unlink()
    result = _run("transfer", photos, style_path, "-o", out, *TINY, "--json", "--skip-existing")
    assert result.exit_code == 0 and len(json.loads(result.stdout)["skipped"]) == 2


def test_batch_computes_the_style_targets_once(random_stylizer, content_path, style_path, monkeypatch):
    from stylekeras.image_io import load_image

    style = load_image(style_path, 32)
    calls = []
    model = random_stylizer.model
    monkeypatch.setattr(random_stylizer, "model", lambda images, **kw: calls.append(images.shape) or model(images, **kw))
    monkeypatch.setattr(random_stylizer, "_style_cache", {})  # the session fixture may have seen this style
    first = random_stylizer.style_grams(style)
    assert random_stylizer.style_grams(style) is first and len(calls) == 1


def test_progress_gif_and_contact_sheet(tmp_path, content_path, style_path):
    gif, sheet = tmp_path / "run.gif", tmp_path / "sheet.png"
    result = _run("transfer", content_path, style_path, "-o", tmp_path / "o.png", *TINY, "--save-every", "1",
                  "--progress-gif", gif, "--contact-sheet", sheet)
    assert result.exit_code == 0, result.output
    with Image.open(gif) as animation:
        assert animation.n_frames == 4 and animation.is_animated
    with Image.open(sheet) as picture:  # content + style + 4 snapshots, 256 px tall, 6 px gaps
        style_width = round(64 * 256 / 40)  # the 64×40 style image at 256 px tall
        assert picture.size == (256 + style_width + 4 * 256 + 5 * 6, 256)


def test_config_file_sets_options_and_flags_override(tmp_path, content_path, style_path):
    config = tmp_path / "run.toml"
    config.write_text(f'content = "{content_path}"\nstyles = ["{style_path}"]\nsize = 40\nsteps = 3\n'
                      'weights = "random"\nstyle-weight = 55.0\n')
    result = _run("transfer", "--config", config, "-o", tmp_path / "o.png", "--steps", "2", "--quiet")
    assert result.exit_code == 0, result.output
    settings = read_report(tmp_path / "o.png")["settings"]
    assert (settings["size"], settings["steps"], settings["style_weight"]) == (40, 2, 55.0)


def test_print_config_emits_a_complete_config_that_round_trips(tmp_path, content_path, style_path):
    printed = _run("transfer", content_path, style_path, "--size", "24", "--optimizer", "adam", "--print-config")
    assert printed.exit_code == 0
    values = tomllib.loads(printed.stdout)
    assert values["size"] == 24 and values["optimizer"] == "adam" and values["steps"] == DEFAULT_STEPS
    (tmp_path / "run.toml").write_text(printed.stdout)
    again = _run("transfer", "--config", tmp_path / "run.toml", "--print-config")
    assert tomllib.loads(again.stdout) == values


def test_print_config_refuses_settings_that_would_not_run(content_path, style_path):
    printed = _run("transfer", content_path, style_path, "--style-weight", "inf", "--print-config")
    assert printed.exit_code == 2 and "--style-weight must be a finite number" in printed.output
    assert printed.stdout == ""


def test_json_summary_is_all_of_stdout_without_quiet(tmp_path, content_path, style_path):
    loud = [argument for argument in TINY if argument != "--quiet"]
    result = _run("transfer", content_path, style_path, "-o", tmp_path / "o.png", *loud, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["output"] == str(tmp_path / "o.png")
    assert "wrote " in result.stderr


def test_bad_config_files(tmp_path):
    (tmp_path / "bad.toml").write_text("size = = 3")
    result = _run("transfer", "--config", tmp_path / "bad.toml")
    assert result.exit_code == 2 and "not a readable TOML file" in result.output and "Traceback" not in result.output
    (tmp_path / "unknown.toml").write_text("colour = 3")
    result = _run("transfer", "--config", tmp_path / "unknown.toml")
    assert result.exit_code == 2 and "unknown option(s) colour" in result.output


def test_cli_polish(content_path, style_path, tmp_path):
    version = _run("--version")
    assert version.exit_code == 0 and version.stdout.startswith("stylekeras 0.")
    top = _run("--help")
    assert "Exit codes (every command)" in top.stdout and "143 by" in top.stdout and "--install-completion" in top.stdout
    assert _run("-h").stdout == top.stdout and "--style-weight" in _run("transfer", "-h").stdout
    result = _run("transfer", "missing.png", style_path, "-o", tmp_path / "o.png")
    assert "\x1b[" not in result.output  # no colour codes when the output is not a terminal
    result = _run("transfer", content_path, style_path, "-o", tmp_path / "o.png", *TINY, "--json")
    summary = json.loads(result.stdout)
    assert summary["output"] == str(tmp_path / "o.png") and summary["steps_done"] == 4


def test_generated_reference_pages_are_up_to_date():
    sys.path.insert(0, str(ROOT / "docs"))
    import make_reference

    assert (ROOT / "docs/cli.md").read_text() == make_reference.cli_reference(), "run python docs/make_reference.py"
    assert (ROOT / "docs/api.md").read_text() == make_reference.api_reference(), "run python docs/make_reference.py"


def test_batch_from_a_glob_pattern(tmp_path, content_path, style_path):
    for name in ("x1.png", "x2.png", "other.png"):
        (tmp_path / name).write_bytes(content_path.read_bytes())
    out = tmp_path / "out"
    result = _run("transfer", str(tmp_path / "x*.png"), style_path, "-o", out, *TINY, "--json")
    assert result.exit_code == 0, result.output
    assert [Path(p).name for p in json.loads(result.stdout)["written"]] == ["x1_style.png", "x2_style.png"]


def test_run_batch_records_failures_skips_and_stops(tmp_path):
    from stylekeras.batch import run_batch
    from stylekeras.errors import StyleKerasError

    contents = [tmp_path / f"{name}.png" for name in ("a", "b", "c", "d", "e")]
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a_style.png").write_text("")
    ran, passed = [], []

    def stylize_group(group, outputs):
        (content,), (output,) = group, outputs
        ran.append(content.stem)
        if content.stem == "b":
            raise StyleKerasError("b is broken")
        return [(output, "interrupted after step 3" if content.stem == "d" else None)]

    summary = run_batch(contents, tmp_path / "out", Path("style.jpg"), stylize_group, skip_existing=True,
                        on_passed=lambda content, error: passed.append((content.stem, error)))
    assert ran == ["b", "c", "d"]  # a skipped, e never reached after d stopped
    assert passed == [("a", None), ("b", "b is broken")]
    assert [Path(p).name for p in summary.written] == ["c_style.png", "d_style.png"]
    assert summary.failed == [{"content": str(contents[1]), "error": "b is broken"}]
    assert summary.stop_reason == "interrupted after step 3"


def test_run_batch_groups_photos_of_one_size_and_checks_them_first(tmp_path):
    from stylekeras.batch import run_batch
    from stylekeras.errors import StyleKerasError

    sizes = {"a": (64, 48), "b": (48, 64), "c": (64, 48), "d": (64, 48), "e": None, "f": (48, 64), "g": (64, 48)}
    contents = [tmp_path / f"{name}.png" for name in sizes]
    events = []

    def size_of(content):
        if sizes[content.stem] is None:
            raise StyleKerasError(f"{content.stem} is unreadable")
        return sizes[content.stem]

    def stylize_group(group, outputs):
        events.append([content.stem for content in group])
        if group[0].stem == "b":
            raise StyleKerasError("out of luck")
        return [(output, None) for output in outputs]

    summary = run_batch(contents, tmp_path, Path("style.jpg"), stylize_group, batch_size=2, batch_key=size_of,
                        on_passed=lambda content, error: events.append((content.stem, error)))
    # The unreadable photo fails before any compute; groups hold at most 2 photos of one size, in order.
    assert events == [("e", "e is unreadable"), ["a", "c"], ["d", "g"], ["b", "f"], ("b", "out of luck"),
                      ("f", "out of luck")]
    assert [Path(p).stem for p in summary.written] == ["a_style", "c_style", "d_style", "g_style"]
    assert [Path(f["content"]).stem for f in summary.failed] == ["e", "b", "f"]


def test_help_and_version_do_not_load_tensorflow():
    # What makes `stylekeras --help` answer at once (timed in README, "Command line").
    script = ("import sys\nfrom stylekeras.cli import app\nfor argv in (['--help'], ['--version'], ['transfer', '--help']):\n"
              "    try:\n        app(argv, prog_name='stylekeras')\n    except SystemExit:\n        pass\n"
              "print('tensorflow loaded:', 'tensorflow' in sys.modules)")
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.rstrip().endswith("tensorflow loaded: False")

