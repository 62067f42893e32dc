"""Hostile inputs, signals, atomic writes, resume and resource limits."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image
from typer.testing import CliRunner

from stylekeras import export
from stylekeras.cli import app
from hostile_images import make_corpus
from stylekeras import image_io, objective
from stylekeras.errors import StyleKerasError
from stylekeras.image_io import load_image, save_image
from stylekeras.stylize import TransferSettings, check_memory
from stylekeras.tiling import Tiling

ROOT = Path(__file__).parents[1]
runner = CliRunner()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("hostile"))


def test_every_hostile_file_works_or_fails_with_one_line(corpus, style_path, tmp_path):
    for name, (path, expected) in corpus.items():
        output = tmp_path / f"{name}.out.png"
        result = runner.invoke(app, ["transfer", str(path), str(style_path), "-o", str(output), "--size", "32",
                                     "--steps", "1", "--weights", "random", "--quiet"])
        assert "Traceback" not in result.output, name
        if expected == "works":
            assert result.exit_code == 0, (name, result.output)
            assert output.exists()
        else:
            errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
            assert result.exit_code == 2 and len(errors) == 1, (name, result.output)
            assert not output.exists()


def test_hostile_files_decode_with_the_right_orientation_and_colours(corpus):
    rotated = load_image(corpus["exif_rotated.jpg"][0])
    assert rotated.shape[:2] == (64, 48)  # EXIF says: show it rotated, 48 wide and 64 tall
    assert np.allclose(load_image(corpus["rgba.png"][0]), 1.0)  # transparent → white
    assert np.allclose(load_image(corpus["animated.gif"][0])[0, 0], [1, 0, 0], atol=0.02)  # first frame
    cmyk, png = load_image(corpus["cmyk.jpg"][0]), load_image(corpus["png_named.jpg"][0])
    assert np.abs(cmyk - png).mean() < 0.03
    deep = load_image(corpus["sixteen_bit.png"][0])
    assert deep.max() > 0.99 and deep.min() < 0.01  # full range kept, not clipped to white


def test_pixel_limit_is_checked_before_decoding(tmp_path, content_path, style_path):
    with pytest.raises(StyleKerasError, match="more than --max-pixels 1000 allows"):
        load_image(content_path, max_pixels=1000)
    result = runner.invoke(app, ["transfer", str(content_path), str(style_path), "-o", str(tmp_path / "o.png"),
                                 "--max-pixels", "1000"])
    assert result.exit_code == 2 and "megapixels" in result.stderr
    assert image_io.DEFAULT_MAX_PIXELS < Image.MAX_IMAGE_PIXELS  # stricter than Pillow, whose check stays on


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=600))
def test_random_bytes_never_crash_the_loader(tmp_path, data):
    path = tmp_path / "random.png"
    path.write_bytes(data)
    try:
        pixels = load_image(path, 16)
    except StyleKerasError as error:
        assert "\n" not in str(error)
    else:
        assert pixels.ndim == 3 and pixels.shape[-1] == 3


@settings(max_examples=200, deadline=None)
@given(
    steps=st.integers(-5, 10), weight=st.floats(allow_nan=True, allow_infinity=True),
    rate=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
    scales=st.integers(-1, 4), start=st.one_of(st.none(), st.integers(-3, 600)),
    average=st.one_of(st.none(), st.floats(-1, 2)), blend=st.one_of(st.none(), st.lists(st.floats(-1, 3), max_size=3)),
    init=st.sampled_from(["content", "noise", "style", "zeros", ""]),
)
def test_random_settings_are_accepted_or_refused_in_one_line(steps, weight, rate, scales, start, average, blend, init):
    try:
        TransferSettings(steps=steps, style_weight=weight, learning_rate=rate, scales=scales, start_size=start,
                         average=average, style_blend=tuple(blend) if blend is not None else None, init=init)
    except StyleKerasError as error:
        assert "\n" not in str(error)


def test_random_cli_numbers_never_give_a_traceback(content_path, style_path, tmp_path):
    rng = np.random.default_rng(0)
    for _ in range(15):
        value = str(rng.choice(["-1", "0", "nan", "inf", "1e999", "abc", "3.5", "-0"]))
        option = str(rng.choice(["--steps", "--size", "--style-weight", "--learning-rate", "--scales", "--average"]))
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


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch, content_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")

    def crash(self, fp, format=None, **params):
        fp.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", crash)
    with pytest.raises(OSError):
        save_image(load_image(content_path), target)
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["out.png"]


class _StopAt:
    def __init__(self, step):
        self.step = step

    def __call__(self, report):
        if report.step == self.step:
            raise KeyboardInterrupt


@pytest.mark.parametrize("options", [
    {"optimizer": "adam"},
    {"optimizer": "lbfgs", "average": 0.9},
    {"optimizer": "adam", "scales": 2, "start_size": 16},
    {"optimizer": "adam", "tile": 16, "tile_margin": 4},
])
def test_resume_continues_exactly_where_it_stopped(random_stylizer, content_path, style_path, tmp_path, options):
    run = dict(size=32, steps=6, init="noise", seed=5, **options)
    straight = random_stylizer.transfer(content_path, style_path, **run)
    checkpoint = tmp_path / "run.checkpoint.npz"
    stopped = random_stylizer.transfer(content_path, style_path, checkpoint=checkpoint, checkpoint_every=0,
                                       callback=_StopAt(4 if options.get("scales") is None else 8), **run)
    assert stopped.stop_reason.startswith("interrupted") and checkpoint.exists()
    resumed = random_stylizer.transfer(content_path, style_path, checkpoint=checkpoint, resume=True, **run)
    assert resumed.stop_reason is None and resumed.steps_done == straight.steps_done
    np.testing.assert_array_equal(resumed.image, straight.image)
    np.testing.assert_array_equal(resumed.history["total"], straight.history["total"])
    assert not checkpoint.exists()  # finished: nothing left to resume


def test_resume_reports_setting_and_input_mismatches(random_stylizer, content_path, style_path, tmp_path):
    checkpoint = tmp_path / "run.checkpoint.npz"
    random_stylizer.transfer(content_path, style_path, size=32, steps=5, style_weight=1e4, checkpoint=checkpoint,
                             callback=_StopAt(2))
    with pytest.raises(StyleKerasError, match=r"style_weight: 10000\.0 → 5\.0"):
        random_stylizer.transfer(content_path, style_path, size=32, steps=5, style_weight=5.0, checkpoint=checkpoint,
                                 resume=True)
    with pytest.raises(StyleKerasError, match="inputs: "):
        random_stylizer.transfer(style_path, style_path, size=32, steps=5, style_weight=1e4, checkpoint=checkpoint,
                                 resume=True)
    more = random_stylizer.transfer(content_path, style_path, size=32, steps=8, style_weight=1e4, checkpoint=checkpoint,
                                    resume=True)
    assert more.steps_done == 8  # more steps than first asked for is not a mismatch


def test_a_size_that_cannot_fit_in_memory_is_refused_before_any_compute(content_path, style_path, tmp_path):
    result = runner.invoke(app, ["transfer", str(content_path), str(style_path), "-o", str(tmp_path / "o.png"),
                                 "--size", "40000", "--weights", "random"])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert "a step at 40000×40000 px needs about" in result.output and "use a lower --size" in result.output
    assert not (tmp_path / "o.png").exists()


def test_memory_check_counts_the_tile_window_and_the_optimizer_copies():
    gib = 2**30
    settings = TransferSettings(size=1024)
    tiling = Tiling(128, 32, 16)
    check_memory((1024, 1024), settings, None, memory=4 * gib)  # measured peak: 2.8 GiB
    with pytest.raises(StyleKerasError, match="needs about 2.3 GiB.*use --tile 512"):
        check_memory((1024, 1024), settings, None, memory=2 * gib)
    check_memory((1024, 1024), settings, tiling, memory=2 * gib)  # tiled: one 192 px window at a time
    with pytest.raises(StyleKerasError, match="needs about 4.6 GiB.*use a lower --size"):  # L-BFGS's copies alone
        check_memory((4096, 4096), settings, tiling, memory=2 * gib)
    check_memory((4096, 4096), TransferSettings(size=4096, optimizer="adam"), tiling, memory=2 * gib)
    with pytest.raises(StyleKerasError, match="use a lower --size"):  # tiles cannot help: the image alone is too big
        check_memory((40000, 40000), settings, None, memory=24 * gib)


def test_out_of_memory_stops_with_the_size_and_what_lowers_memory(random_stylizer, content_path, style_path,
                                                                   monkeypatch):
    def exhausted(*args, **kwargs):
        raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")

    monkeypatch.setattr(objective, "loss_parts", exhausted)
    result = random_stylizer.transfer(content_path, style_path, size=24, steps=3)
    assert result.stop_reason.startswith("out of memory at 24×24 px")
    assert "--size" in result.stop_reason and "--style-layers" in result.stop_reason


def test_killed_export_leaves_nothing_tf_serving_would_load(tmp_path):
    command = [sys.executable, str(ROOT / "cli.py"), "export", "--base-path", str(tmp_path), "--weights", "hed"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    model_dir = tmp_path / "vgg16_features"
    deadline = time.monotonic() + 120
    while not list(model_dir.glob(".partial-*/*")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert list(model_dir.glob(".partial-*")), "the export finished before it could be killed"
    assert not [entry for entry in model_dir.iterdir() if entry.name.isdigit()]
    assert export.export_feature_extractor(tmp_path, weights="random", layers=["block1_conv1"],
                                                      backbone="vgg16").name == "1"
