import subprocess
import sys
from pathlib import Path

import keras
import pytest
from PIL import Image
from typer.testing import CliRunner

from stylekeras.cli import app

runner = CliRunner()


def _run(*args):
    return runner.invoke(app, [str(arg) for arg in args])


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


def test_layers_lists_names_and_shapes():
    result = _run("layers", "--backbone", "vgg19", "--size", "64")
    assert result.exit_code == 0
    assert "block5_conv4" in result.output and "block4_conv2       8 × 8     × 512  content" in result.output


@pytest.fixture
def existing_output(tmp_path):
    path = tmp_path / "keep.png"
    path.write_bytes(b"precious")
    return path


def _assert_untouched(path):
    assert path.read_bytes() == b"precious"


def test_missing_content_file(content_path, existing_output):
    _assert_one_line_error(_run("transfer", "nope.jpg", content_path, "-o", existing_output), "no such file")
    _assert_untouched(existing_output)


def test_non_image_style(tmp_path, content_path, existing_output):
    fake = tmp_path / "fake.jpg"
    fake.write_text("hello")
    _assert_one_line_error(_run("transfer", content_path, fake, "-o", existing_output), "not an image")
    _assert_untouched(existing_output)


def test_image_too_small_for_the_layers(content_path, style_path, existing_output):
    result = _run("transfer", content_path, style_path, "-o", existing_output, "--size", "8", "--weights", "random")
    _assert_one_line_error(result, "at least 16 px")
    _assert_untouched(existing_output)


def test_unknown_layer_lists_the_valid_ones(content_path, style_path, existing_output):
    result = _run("transfer", content_path, style_path, "-o", existing_output, "--weights", "random",
                  "--style-layers", "block1_conv1,relu9_9")
    _assert_one_line_error(result, "'relu9_9'")
    assert "valid: block1_conv1, block1_conv2" in result.stderr
    _assert_untouched(existing_output)


@pytest.mark.parametrize("option, value", [("--steps", "-1"), ("--style-weight", "-1"), ("--tv-weight", "-0.5"),
                                           ("--seed", "-3"), ("--tile", "0"), ("--tile-margin", "-1")])
def test_negative_numbers_are_refused(content_path, style_path, existing_output, option, value):
    result = _run("transfer", content_path, style_path, "-o", existing_output, option, value)
    assert result.exit_code == 2 and option in result.output and "Traceback" not in result.output
    _assert_untouched(existing_output)


def test_weights_file_that_does_not_fit(tmp_path, content_path, style_path, existing_output):
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    bad = tmp_path / "dense.weights.h5"
    other.save_weights(bad)
    result = _run("transfer", content_path, style_path, "-o", existing_output, "--weights", bad)
    _assert_one_line_error(result, "not a Keras weights file")
    _assert_untouched(existing_output)


def test_unwritable_output_is_refused_before_optimizing(tmp_path, content_path, style_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    _assert_one_line_error(_run("transfer", content_path, style_path, "-o", blocker / "out.png"), "cannot create")
    _assert_one_line_error(_run("transfer", content_path, style_path, "-o", tmp_path / "out.gif"), "unsupported suffix")


def test_non_finite_loss_keeps_the_existing_output_and_writes_beside_it(content_path, style_path, existing_output):
    result = _run("transfer", content_path, style_path, "-o", existing_output, "--size", "32", "--steps", "3",
                  "--weights", "random", "--style-weight", "1e38", "--quiet")
    _assert_one_line_error(result, "loss became", code=1)  # failed while running, not bad input
    _assert_untouched(existing_output)
    partial = existing_output.with_name("keep_partial.png")
    assert Image.open(partial).size == (32, 32)


def test_controls_end_to_end(tmp_path, content_path, style_path):
    output = tmp_path / "blend.png"
    result = _run("transfer", content_path, style_path, Path(__file__).parent / "data/style2.png", "-o", output,
                  "--size", "48", "--steps", "2", "--weights", "random", "--style-blend", "0.7,0.3", "--optimizer",
                  "lbfgs", "--scales", "2", "--start-size", "32", "--average", "0.9", "--preserve-color", "luminance",
                  "--pooling", "avg", "--padding", "replicate", "--tile", "16", "--tile-margin", "8",
                  "--precision", "mixed", "--quiet")
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
    ],
)
def test_bad_control_options(content_path, style_path, existing_output, arguments, fragment):
    result = _run("transfer", content_path, style_path, "-o", existing_output, "--weights", "random", *arguments)
    _assert_one_line_error(result, fragment)
    _assert_untouched(existing_output)


def test_unknown_optimizer_and_wrong_size_mask(tmp_path, content_path, style_path, existing_output):
    result = _run("transfer", content_path, style_path, "-o", existing_output, "--optimizer", "sgd")
    assert result.exit_code == 2 and "'sgd' is not one of" in result.output and "Traceback" not in result.output
    Image.new("L", (64, 16)).save(tmp_path / "wide.png")
    result = _run("transfer", content_path, style_path, "-o", existing_output, "--weights", "random",
                  "--style-mask", tmp_path / "wide.png")
    _assert_one_line_error(result, "masks need the content's aspect ratio")
    _assert_untouched(existing_output)
