"""stylekeras.cli: one-line errors and exit codes, signals, resume, config files, --json, help."""

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from stylekeras.checkpoint import load_checkpoint
from stylekeras.cli import app
from stylekeras.defaults import DEFAULT_STEPS, PRESETS, PRESETS_DIR
from stylekeras.report import read_report
from cli_run import TINY, run_cli, runner
from full_disk import files_limited_to

ROOT = Path(__file__).parents[1]


def _assert_one_line_error(result, fragment, code=2):
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and fragment in error_lines[0], result.stderr


def test_transfer_end_to_end_in_a_real_process(tmp_path, content_path, style_path):
    output = tmp_path / "out.png"
    completed = subprocess.run(
        [sys.executable, "-m", "stylekeras", "transfer", str(content_path), str(style_path),
         "-o", str(output), "--size", "48", "--steps", "6", "--weights", "hed", "--save-every", "3"],
        capture_output=True, text=True, timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    assert Image.open(output).size == (48, 48)
    assert (tmp_path / "out_0003.png").exists()
    assert "weights: hed" in completed.stderr
    assert f"wrote {output}" in completed.stdout


def test_loading_the_library_freezes_what_it_loaded_once_and_leaves_the_collector_on():
    loads = ("import gc; from stylekeras import cli; cli._library(); frozen = gc.get_freeze_count(); "
             "later = [[] for _ in range(1000)]; cli._library(); "
             "print(gc.isenabled(), frozen > 0, gc.get_freeze_count() == frozen)")
    fails = ("import contextlib, gc; from stylekeras import cli\n"
             "@contextlib.contextmanager\ndef broken():\n    raise RuntimeError\n    yield\n"
             "cli.quiet_native_stderr = broken\ntry:\n    cli._library()\nexcept RuntimeError:\n"
             "    print(gc.isenabled())")
    for code, printed in ((loads, "True True True"), (fails, "True")):
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
        assert result.stdout.split() == printed.split(), result.stderr


def test_layers_lists_names_and_shapes():
    result = run_cli("layers", "--backbone", "vgg19", "--size", "64")
    assert result.exit_code == 0
    assert "block5_conv4" in result.output and "block2_conv2      32 × 32    × 128  content" in result.output


@pytest.fixture
def existing_output(tmp_path):
    path = tmp_path / "keep.png"
    path.write_bytes(b"precious")
    return path


def _assert_untouched(path):
    assert path.read_bytes() == b"precious"


def test_missing_content_file(content_path, existing_output):
    _assert_one_line_error(run_cli("transfer", "nope.jpg", content_path, "-o", existing_output), "no such file")
    _assert_untouched(existing_output)


def test_non_image_style(tmp_path, content_path, existing_output):
    fake = tmp_path / "fake.jpg"
    fake.write_text("hello")
    _assert_one_line_error(run_cli("transfer", content_path, fake, "-o", existing_output), "not an image")
    _assert_untouched(existing_output)


def test_image_too_small_for_the_layers(content_path, style_path, existing_output):
    result = run_cli("transfer", content_path, style_path, "-o", existing_output, "--size", "4", "--weights", "random")
    _assert_one_line_error(result, "at least 8 px")
    _assert_untouched(existing_output)


def test_unknown_layer_lists_the_valid_ones(content_path, style_path, existing_output):
    result = run_cli("transfer", content_path, style_path, "-o", existing_output, "--weights", "random",
                  "--style-layers", "block1_conv1,relu9_9")
    _assert_one_line_error(result, "'relu9_9'")
    assert "valid: block1_conv1, block1_conv2" in result.stderr
    _assert_untouched(existing_output)


@pytest.mark.parametrize("option, value", [("--steps", "-1"), ("--style-weight", "-1"), ("--tv-weight", "-0.5"),
                                           ("--seed", "-3"), ("--tile", "0"), ("--tile-margin", "-1")])
def test_negative_numbers_are_refused(content_path, style_path, existing_output, option, value):
    result = run_cli("transfer", content_path, style_path, "-o", existing_output, option, value)
    assert result.exit_code == 2 and option in result.output and "Traceback" not in result.output
    _assert_untouched(existing_output)


def test_weights_file_that_does_not_fit(tmp_path, content_path, style_path, existing_output):
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    bad = tmp_path / "dense.weights.h5"
    other.save_weights(bad)
    result = run_cli("transfer", content_path, style_path, "-o", existing_output, "--weights", bad)
    _assert_one_line_error(result, "not a Keras weights file")
    _assert_untouched(existing_output)


def test_unwritable_output_is_refused_before_optimizing(tmp_path, content_path, style_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    _assert_one_line_error(run_cli("transfer", content_path, style_path, "-o", blocker / "out.png"), "cannot create")
    _assert_one_line_error(run_cli("transfer", content_path, style_path, "-o", tmp_path / "out.gif"), "unsupported suffix")


def test_a_result_that_cannot_be_written_is_one_error_line_with_code_1(content_path, style_path, existing_output):
    """On a full disk the checkpoint is skipped with a warning, the result's write fails with one line naming
    it, and the file that was there stays."""
    with files_limited_to(1024):  # smaller than the 32 px result and its checkpoint
        result = run_cli("transfer", content_path, style_path, "-o", existing_output, "--checkpoint-every", "2", *TINY)
    _assert_one_line_error(result, f"cannot write '{existing_output}' (File too large)", code=1)
    checkpoint = existing_output.with_name("keep.checkpoint.npz")
    assert f"warning: checkpoint '{checkpoint}' could not be written (File too large)" in result.stderr
    _assert_untouched(existing_output)
    assert not checkpoint.exists() and not list(existing_output.parent.glob(".*.tmp"))


def test_non_finite_loss_keeps_the_existing_output_and_writes_beside_it(content_path, style_path, existing_output):
    result = run_cli("transfer", content_path, style_path, "-o", existing_output, "--size", "32", "--steps", "3",
                  "--weights", "random", "--tv-weight", "1e36", "--quiet")  # ×256 at 32 px: the loss overflows float32
    _assert_one_line_error(result, "tv loss became", code=1)  # failed while running, not bad input
    _assert_untouched(existing_output)
    partial = existing_output.with_name("keep_partial.png")
    assert Image.open(partial).size == (32, 32)


def test_controls_end_to_end(tmp_path, content_path, style_path):
    output = tmp_path / "blend.png"
    result = run_cli("transfer", content_path, style_path, Path(__file__).parent / "data/style2.png", "-o", output,
                  "--size", "48", "--steps", "2", "--weights", "random", "--style-blend", "0.7,0.3", "--optimizer",
                  "lbfgs", "--scales", "2", "--start-size", "32", "--average", "0.9", "--preserve-color", "luminance",
                  "--pooling", "avg", "--padding", "replicate", "--tile", "16", "--tile-margin", "8",
                  "--precision", "mixed", "--min-improvement", "0.5", "--quiet")
    assert result.exit_code == 0, result.output
    assert Image.open(output).size == (48, 48)


@pytest.mark.parametrize(
    "arguments, fragment",
    [
        (["--style-blend", "1,2,3"], "3 weights for 1 style images"),
        (["--style-blend", "0"], "positive sum"),
        (["--style-blend", "a,b"], "not a comma-separated list of numbers"),
        (["--scales", "2", "--start-size", "999"], "--start-size 999 must be between 1 and --size"),
        (["--style-mask", "missing.png"], "no such file"),
        (["--min-improvement", "1"], "--min-improvement must be in [0, 1), got 1.0"),
    ],
)
def test_bad_control_options(content_path, style_path, existing_output, arguments, fragment):
    result = run_cli("transfer", content_path, style_path, "-o", existing_output, "--weights", "random", *arguments)
    _assert_one_line_error(result, fragment)
    _assert_untouched(existing_output)


def test_unknown_optimizer_and_wrong_size_mask(tmp_path, content_path, style_path, existing_output):
    result = run_cli("transfer", content_path, style_path, "-o", existing_output, "--optimizer", "sgd")
    assert result.exit_code == 2 and "'sgd' is not one of" in result.output and "Traceback" not in result.output
    Image.new("L", (64, 16)).save(tmp_path / "wide.png")
    result = run_cli("transfer", content_path, style_path, "-o", existing_output, "--weights", "random",
                  "--style-mask", tmp_path / "wide.png")
    _assert_one_line_error(result, "masks need the content's aspect ratio")
    _assert_untouched(existing_output)


def test_a_second_signal_stops_at_once_but_never_while_results_are_written():
    from stylekeras.cli import _Interrupts

    with _Interrupts() as interrupts:
        interrupts.deferred = True  # optimizing: the first signal waits for the end of the step
        os.kill(os.getpid(), signal.SIGINT)
        assert interrupts.received == [signal.SIGINT]
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
        with interrupts.held():  # writing the image: any number of signals only wait
            os.kill(os.getpid(), signal.SIGTERM)
        assert interrupts.exit_code() == 130  # the first signal names the exit code
        with pytest.raises(KeyboardInterrupt):
            interrupts.check(None)  # and the step's end stops the run


def test_from_image_reruns_the_same_settings_to_the_same_image(tmp_path, content_path, style_path):
    first = tmp_path / "first.png"
    assert run_cli("transfer", content_path, style_path, "-o", first, *TINY, "--init", "noise", "--seed", "3",
                "--tv-weight", "7").exit_code == 0
    again = tmp_path / "again.png"
    assert run_cli("transfer", "--from", first, "-o", again, "--quiet").exit_code == 0
    np.testing.assert_array_equal(np.asarray(Image.open(again)), np.asarray(Image.open(first)))
    changed = tmp_path / "changed.png"
    assert run_cli("transfer", "--from", first, "-o", changed, "--tv-weight", "0", "--quiet").exit_code == 0
    assert read_report(changed)["settings"]["tv_weight"] == 0.0 and read_report(changed)["settings"]["seed"] == 3


def test_init_image_is_the_start_and_is_carried_by_the_report(tmp_path, content_path, style_path):
    start = tmp_path / "start.png"
    Image.fromarray(np.random.default_rng(4).integers(0, 256, (20, 50, 3), np.uint8)).save(start)  # another shape
    first = tmp_path / "first.png"
    assert run_cli("transfer", content_path, style_path, "-o", first, *TINY, "--steps", "0",
                   "--init-image", start).exit_code == 0
    height, width = np.asarray(Image.open(first)).shape[:2]
    expected = np.asarray(Image.open(start).resize((width, height), Image.BILINEAR), np.float32)
    assert np.abs(np.asarray(Image.open(first), np.float32) - expected).mean() < 2.0  # the start, resized
    assert read_report(first)["inputs"]["init_image"] == str(start)
    again = tmp_path / "again.png"
    assert run_cli("transfer", "--from", first, "-o", again, "--quiet").exit_code == 0
    np.testing.assert_array_equal(np.asarray(Image.open(again)), np.asarray(Image.open(first)))
    assert tomllib.loads(run_cli("transfer", "--from", first, "--print-config").stdout)["init-image"] == str(start)
    refused = run_cli("transfer", content_path, style_path, "-o", start, *TINY, "--init-image", start)
    assert refused.exit_code == 2 and "start.png" in refused.output  # the start is an input: never overwritten


def test_config_file_sets_options_and_flags_override(tmp_path, content_path, style_path):
    config = tmp_path / "run.toml"
    config.write_text(f'content = "{content_path}"\nstyles = ["{style_path}"]\nsize = 40\nsteps = 3\n'
                      'weights = "random"\nstyle-weight = 55.0\n')
    result = run_cli("transfer", "--config", config, "-o", tmp_path / "o.png", "--steps", "2", "--quiet")
    assert result.exit_code == 0, result.output
    settings = read_report(tmp_path / "o.png")["settings"]
    assert (settings["size"], settings["steps"], settings["style_weight"]) == (40, 2, 55.0)


def test_print_config_emits_a_complete_config_that_round_trips(tmp_path, content_path, style_path):
    printed = run_cli("transfer", content_path, style_path, "--size", "24", "--optimizer", "adam", "--print-config")
    assert printed.exit_code == 0
    values = tomllib.loads(printed.stdout)
    assert values["size"] == 24 and values["optimizer"] == "adam" and values["steps"] == DEFAULT_STEPS
    (tmp_path / "run.toml").write_text(printed.stdout)
    again = run_cli("transfer", "--config", tmp_path / "run.toml", "--print-config")
    assert tomllib.loads(again.stdout) == values


def test_print_config_refuses_settings_that_would_not_run(content_path, style_path):
    printed = run_cli("transfer", content_path, style_path, "--style-weight", "inf", "--print-config")
    assert printed.exit_code == 2 and "--style-weight must be a finite number" in printed.output
    assert printed.stdout == ""


def test_json_summary_is_all_of_stdout_without_quiet(tmp_path, content_path, style_path):
    loud = [argument for argument in TINY if argument != "--quiet"]
    result = run_cli("transfer", content_path, style_path, "-o", tmp_path / "o.png", *loud, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["output"] == str(tmp_path / "o.png")
    assert "wrote " in result.stderr


def test_quiet_hides_keras_download_notes(tmp_path, content_path, style_path, monkeypatch):
    import keras
    from keras.src.utils.io_utils import print_msg

    def offline_get_file(*_, **__):  # what Keras does without a network: says it downloads, then fails
        print_msg("Downloading data from https://storage.googleapis.com/vgg19.h5")
        raise Exception("URL fetch failure: no network")

    monkeypatch.setattr(keras.utils, "get_file", offline_get_file)
    tiny_auto = [argument if argument != "random" else "auto" for argument in TINY]
    quiet = run_cli("transfer", content_path, style_path, "-o", tmp_path / "quiet.png", *tiny_auto)
    assert quiet.exit_code == 0, quiet.output
    assert quiet.stderr == quiet.stdout == ""
    loud = run_cli("transfer", content_path, style_path, "-o", tmp_path / "loud.png",
                   *[argument for argument in tiny_auto if argument != "--quiet"])
    assert loud.exit_code == 0, loud.output
    assert "Downloading data from" in loud.stderr and "weights: imagenet-q8" in loud.stderr
    assert "Downloading" not in loud.stdout


def test_config_names_a_preset_and_a_file_of_that_name_comes_first(tmp_path, content_path, style_path, monkeypatch):
    assert {path.stem for path in PRESETS_DIR.glob("*.toml")} == set(PRESETS)
    preset = tomllib.loads((PRESETS_DIR / "neural-style.toml").read_text())
    printed = run_cli("transfer", content_path, style_path, "--config", "neural-style", "--tv-weight", "7", "--print-config")
    assert printed.exit_code == 0, printed.output
    values = tomllib.loads(printed.stdout)
    assert {key: values[key] for key in preset} == preset | {"tv-weight": 7.0}
    monkeypatch.chdir(tmp_path)
    Path("neural-style").write_text("steps = 3\n")
    printed = run_cli("transfer", content_path, style_path, "--config", "neural-style", "--print-config")
    assert tomllib.loads(printed.stdout)["steps"] == 3 and "block5_conv1" not in printed.stdout
    result = run_cli("transfer", content_path, style_path, "--config", "neural-styl")
    assert result.exit_code == 2 and "'neural-styl' is neither a file nor a preset (neural-style, bold)" in result.output
    printed = run_cli("transfer", content_path, style_path, "--config", "bold", "--print-config")
    assert tomllib.loads(printed.stdout)["style-layer-weights"] == "0.25,0.5,1,2"


def test_bad_config_files(tmp_path):
    (tmp_path / "bad.toml").write_text("size = = 3")
    result = run_cli("transfer", "--config", tmp_path / "bad.toml")
    assert result.exit_code == 2 and "not a readable TOML file" in result.output and "Traceback" not in result.output
    (tmp_path / "unknown.toml").write_text("colour = 3")
    result = run_cli("transfer", "--config", tmp_path / "unknown.toml")
    assert result.exit_code == 2 and "unknown option(s) colour" in result.output


def test_cli_polish(content_path, style_path, tmp_path):
    version = run_cli("--version")
    assert version.exit_code == 0 and version.stdout.startswith("stylekeras 0.")
    top = run_cli("--help")
    assert "Exit codes (every command)" in top.stdout and "143 by" in top.stdout and "--install-completion" in top.stdout
    assert run_cli("-h").stdout == top.stdout and "--style-weight" in run_cli("transfer", "-h").stdout
    result = run_cli("transfer", "missing.png", style_path, "-o", tmp_path / "o.png")
    assert "\x1b[" not in result.output  # no colour codes when the output is not a terminal
    result = run_cli("transfer", content_path, style_path, "-o", tmp_path / "o.png", *TINY, "--json")
    summary = json.loads(result.stdout)
    assert summary["output"] == str(tmp_path / "o.png") and summary["steps_done"] == 4


def test_help_and_version_do_not_load_tensorflow():
    # What makes `stylekeras --help` answer at once (timed in README, "Command line").
    script = ("import sys\nfrom stylekeras.cli import app\nfor argv in (['--help'], ['--version'], ['transfer', '--help']):\n"
              "    try:\n        app(argv, prog_name='stylekeras')\n    except SystemExit:\n        pass\n"
              "print('tensorflow loaded:', 'tensorflow' in sys.modules)")
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.rstrip().endswith("tensorflow loaded: False")


class _Exited(Exception):
    pass


@pytest.mark.parametrize("stop, code, printed", [(None, 0, ""), (SystemExit(3), 3, ""), (SystemExit(None), 0, ""),
                                                  (SystemExit("gave up"), 1, "gave up")])
def test_main_exits_with_the_commands_code_after_the_exit_handlers(monkeypatch, capsys, stop, code, printed):
    # With TensorFlow loaded (as here), `main` skips the interpreter's teardown: what it must still do first.
    import atexit
    import threading

    import stylekeras.cli as cli

    done = []

    def command(prog_name):
        assert prog_name == "stylekeras"
        print("result")
        if stop is not None:
            raise stop

    def exit_now(status):
        done.append("exit")
        raise _Exited(status)

    monkeypatch.setattr(cli, "app", command)
    monkeypatch.setattr(threading, "enumerate", lambda: [threading.current_thread()])  # no other threads
    monkeypatch.setattr(atexit, "_run_exitfuncs", lambda: done.append("exit handlers"))
    monkeypatch.setattr(os, "_exit", exit_now)
    with pytest.raises(_Exited) as exited:
        cli.main()
    assert exited.value.args == (code,) and done == ["exit handlers", "exit"]
    captured = capsys.readouterr()
    assert captured.out == "result\n" and captured.err.strip() == printed


def test_main_exits_the_normal_way_while_another_thread_runs(monkeypatch):
    import threading

    import stylekeras.cli as cli

    release = threading.Event()
    writer = threading.Thread(target=release.wait)
    monkeypatch.setattr(cli, "app", lambda prog_name: writer.start())
    monkeypatch.setattr(os, "_exit", lambda status: pytest.fail("exited past a running thread"))
    try:
        with pytest.raises(SystemExit) as exited:
            cli.main()
    finally:
        release.set()
        writer.join()
    assert exited.value.code == 0


@pytest.mark.parametrize("missing", ["content", "style", "mask", "init", "clip"])
def test_a_missing_input_file_fails_before_tensorflow_loads(content_path, style_path, tmp_path, missing):
    # A mistyped name answers at once instead of after TensorFlow's import (README, "Command line").
    absent = str(tmp_path / "absent.png")
    argv = ["transfer", absent if missing == "content" else str(content_path),
            absent if missing == "style" else str(style_path), "-o", str(tmp_path / "out.png")]
    argv += ["--style-mask", absent] if missing == "mask" else []
    argv += ["--init-image", absent] if missing == "init" else []
    argv = ["video", absent, str(style_path), "-o", str(tmp_path / "out.png")] if missing == "clip" else argv
    script = (f"import sys\nfrom stylekeras.cli import app\ntry:\n    app({argv!r}, prog_name='stylekeras')\n"
              "except SystemExit as exit:\n    print('exit', exit.code)\nprint('tensorflow loaded:', 'tensorflow' in sys.modules)")
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert completed.stdout.split("\n")[-3:-1] == ["exit 2", "tensorflow loaded: False"], completed.stdout + completed.stderr
    assert f"'{absent}': no such file" in completed.stderr and "Traceback" not in completed.stderr
    assert not (tmp_path / "out.png").exists()


def test_random_cli_numbers_never_give_a_traceback(content_path, style_path, tmp_path):
    rng = np.random.default_rng(0)
    for _ in range(15):
        value = str(rng.choice(["-1", "0", "nan", "inf", "1e999", "abc", "3.5", "-0"]))
        option = str(rng.choice(["--steps", "--size", "--style-weight", "--learning-rate", "--scales", "--average",
                                 "--min-improvement"]))
        result = runner.invoke(app, ["transfer", str(content_path), str(style_path), "-o", str(tmp_path / "o.png"),
                                     option, value, "--steps", "0", "--weights", "random", "--quiet"]
                               if option != "--steps" else
                               ["transfer", str(content_path), str(style_path), "-o", str(tmp_path / "o.png"),
                                option, value, "--weights", "random", "--quiet", "--size", "16"])
        assert "Traceback" not in result.output and result.exit_code in (0, 2), (option, value, result.output)


def _start_run(tmp_path, content_path, style_path, output):
    command = [sys.executable, str(ROOT / "cli.py"), "transfer", str(content_path), str(style_path), "-o",
               str(output), "--size", "32", "--steps", "100000", "--weights", "random", "--save-every", "1",
               "--checkpoint-every", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob("*_0003.png")):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.2)
    return process


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_cleanly_and_keeps_the_image(tmp_path, content_path, style_path, signum, code):
    output = tmp_path / "out.png"
    process = _start_run(tmp_path, content_path, style_path, output)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == code, stderr
    assert "Traceback" not in stderr and "stopped: interrupted after step" in stderr
    assert Image.open(output).size == (32, 32)
    assert (tmp_path / "out.checkpoint.npz").exists() and "--resume" in stderr


def test_signal_never_overwrites_an_existing_output(tmp_path, content_path, style_path):
    output = tmp_path / "out.png"
    output.write_bytes(b"precious")
    process = _start_run(tmp_path, content_path, style_path, output)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130 and output.read_bytes() == b"precious"
    assert Image.open(tmp_path / "out_partial.png").size == (32, 32) and "out_partial.png" in stderr


def test_resume_after_sigkill_finishes_the_same_image_as_an_unbroken_run(tmp_path, content_path, style_path):
    run = [str(content_path), str(style_path), "--size", "32", "--weights", "random", "--optimizer", "adam",
           "--precision", "float32", "--seed", "3", "--init", "noise", "--quiet"]
    output, checkpoint = tmp_path / "out.png", tmp_path / "out.checkpoint.npz"
    process = subprocess.Popen([sys.executable, "-m", "stylekeras", "transfer", *run, "-o", str(output), "--steps",
                                "100000", "--checkpoint-every", "5", "--save-every", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (checkpoint.exists() and load_checkpoint(checkpoint).meta["done"] >= 10):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    process.kill()  # SIGKILL: no handler runs, only what was already on disk survives
    process.communicate()
    done = load_checkpoint(checkpoint).meta["done"]
    assert not output.exists() and done % 5 == 0 and 10 <= done < 60  # saved every 5 steps, by itself

    resumed = runner.invoke(app, ["transfer", *run, "-o", str(output), "--steps", "60", "--resume"])
    assert resumed.exit_code == 0, resumed.output
    straight = runner.invoke(app, ["transfer", *run, "-o", str(tmp_path / "straight.png"), "--steps", "60"])
    assert straight.exit_code == 0, straight.output
    np.testing.assert_array_equal(np.asarray(Image.open(output)), np.asarray(Image.open(tmp_path / "straight.png")))
    assert not checkpoint.exists()  # finished: nothing left to resume


# `stylekeras video`

VIDEO_TINY = ["--size", "48", "--steps", "4", "--weights", "random", "--precision", "float32", "--quiet"]


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory, content_path):
    pytest.importorskip("av")
    pytest.importorskip("cv2")
    from clips import make_clip, pan_frames

    return make_clip(tmp_path_factory.mktemp("clip") / "pan.mp4", pan_frames(content_path, 4), audio_seconds=4 / 12)


def test_video_writes_the_clip_and_prints_its_summary(tmp_path, clip_path, style_path):
    output = tmp_path / "styled.mp4"
    result = run_cli("video", clip_path, style_path, "-o", output, *VIDEO_TINY, "--max-frames", "3", "--json",
                     "--preserve-color", "luminance", "--frame-steps", "2")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary == {"output": str(output), "frames": 3, "rate": 12.0, "stylized": 3, "seconds": summary["seconds"],
                       "stop_reason": None}
    import av

    with av.open(str(output)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 3 and container.streams.audio
    assert not (tmp_path / "styled.frames").exists()


@pytest.mark.parametrize("make_args, fragment", [
    (lambda tmp, clip, style: [style, style], "is a still image, not a video; stylize it with `stylekeras transfer`"),
    (lambda tmp, clip, style: [(tmp / "notes.mp4", (tmp / "notes.mp4").write_text("hello"))[0], style],
     "is not a readable video"),
    (lambda tmp, clip, style: [clip, style, "-o", tmp / "out.avi"], "is not a video format stylekeras writes"),
    (lambda tmp, clip, style: [clip, style, "--start", "60"], "has no frames from 60 s"),
    (lambda tmp, clip, style: [clip, style, "--duration", "0"], "--duration must be > 0 seconds"),
    (lambda tmp, clip, style: [clip], "give CLIP and at least one STYLE"),
    (lambda tmp, clip, style: [clip, style, "-o", clip], "is one of the input images"),
])
def test_video_bad_input_is_one_line_and_exit_2(tmp_path, clip_path, style_path, make_args, fragment, monkeypatch):
    from stylekeras import cli

    monkeypatch.setattr(cli, "_stylizer", lambda *_: pytest.fail("the network was built before the input was checked"))
    args = make_args(tmp_path, clip_path, style_path)
    output = [] if "-o" in args else ["-o", tmp_path / "out.mp4"]
    result = run_cli("video", *args, *output, *VIDEO_TINY)
    _assert_one_line_error(result, fragment)
    assert not (tmp_path / "out.mp4").exists() and not list(Path.cwd().glob("*_style.mp4"))


def test_video_without_pyav_says_what_to_install(tmp_path, clip_path, style_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)
    result = run_cli("video", clip_path, style_path, "-o", tmp_path / "out.mp4", *VIDEO_TINY)
    _assert_one_line_error(result, 'pip install "stylekeras[video]"')


def test_video_interrupted_keeps_its_frames_and_resumes(tmp_path, clip_path, style_path):
    output = tmp_path / "out.mp4"
    frames = tmp_path / "out.frames"
    run = ["video", str(clip_path), str(style_path), "-o", str(output), *VIDEO_TINY]
    process = subprocess.Popen([sys.executable, "-m", "stylekeras", *run, "--frame-steps", "100000"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (frames / "frame_000000.png").exists():  # then frame 2 runs its 100000 steps
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130 and "Traceback" not in stderr, stderr
    assert "stopped at frame 2 of 4: interrupted" in stderr and "--resume" in stderr
    assert not output.exists() and [path.name for path in frames.glob("frame_*.png")] == ["frame_000000.png"]

    again = run_cli(*run, "--frame-steps", "2")
    _assert_one_line_error(again, "holds the frames of an earlier run; add --resume")
    resumed = run_cli(*run, "--frame-steps", "2", "--resume", "--json")
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.stdout)["stylized"] == 3 and not frames.exists()
