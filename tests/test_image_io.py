"""stylekeras.image_io: loading hostile files, orientation and colour, limits, atomic saving."""

import numpy as np
import tensorflow as tf
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image

from hostile_images import make_corpus
from stylekeras import image_io
from stylekeras.cli import app
from stylekeras.errors import OutputError, StyleKerasError
from stylekeras.image_io import (
    check_output_path, load_image, longer_side_shape, resize_longer_side, resized_longer_side, save_image,
)
from cli_run import runner


def _save(tmp_path, image, name, **options):
    path = tmp_path / name
    image.save(path, **options)
    return path


def test_resize_makes_the_longer_side_size(style_path):
    pixels = load_image(style_path, 32)
    assert pixels.shape == (20, 32, 3) and pixels.dtype == np.float32
    assert 0.0 <= pixels.min() and pixels.max() <= 1.0


@pytest.mark.parametrize("mode", ["L", "P", "CMYK", "RGB"])
def test_modes_become_rgb(tmp_path, mode):
    image = Image.new("RGB", (10, 6), (200, 100, 50)).convert(mode)
    suffix = ".jpg" if mode == "CMYK" else ".png"
    pixels = load_image(_save(tmp_path, image, f"image{suffix}"))
    assert pixels.shape == (6, 10, 3)
    expected = np.asarray(image.convert("RGB"), np.float32)[0, 0] / 255
    np.testing.assert_allclose(pixels[0, 0], expected, atol=0.05)


def test_transparent_pixels_are_composited_on_white(tmp_path):
    image = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    pixels = load_image(_save(tmp_path, image, "clear.png"))
    np.testing.assert_allclose(pixels, 1.0)


def test_sixteen_bit_grayscale_keeps_its_range(tmp_path):
    image = Image.fromarray(np.full((4, 4), 32768, np.uint16))
    pixels = load_image(_save(tmp_path, image, "deep.png"))
    np.testing.assert_allclose(pixels, 32768 / 65535, atol=1e-4)


@pytest.mark.parametrize("scale", [1.0, 255.0, 65535.0])
def test_float_grayscale_is_read_in_the_range_its_values_show(tmp_path, scale):
    # A float TIFF may hold [0, 1] or an integer format's range: its brightest value tells which.
    values = np.linspace(0.0, 1.0, 16, dtype=np.float32).reshape(4, 4)
    pixels = load_image(_save(tmp_path, Image.fromarray(values * scale), "float.tif"))
    np.testing.assert_allclose(pixels, np.repeat(values[..., None], 3, axis=-1), atol=1e-6)


def test_exif_orientation_is_applied(tmp_path):
    # Stored 32 wide and 16 tall, dark on the left and bright on the right. Orientation 6 asks to turn it 90°
    # clockwise for display, so the stored left column becomes the top row: 16 wide, 32 tall, dark on top
    # (turned the other way, the top would be bright).
    ramp = np.repeat(np.linspace(0, 255, 32).astype(np.uint8)[None, :], 16, axis=0)
    image = Image.fromarray(np.stack([ramp] * 3, axis=-1))
    exif = Image.Exif()
    exif[0x0112] = 6
    pixels = load_image(_save(tmp_path, image, "rotated.jpg", exif=exif))
    assert pixels.shape == (32, 16, 3)
    assert pixels[:4].mean() < 0.2 and pixels[-4:].mean() > 0.8


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".jpeg", ".webp"])
def test_save_round_trips_and_leaves_no_temporary_file(tmp_path, suffix, content_path):
    pixels = load_image(content_path)
    path = save_image(pixels, tmp_path / f"out{suffix}")
    assert np.abs(load_image(path) - pixels).mean() < 0.02
    assert [p.name for p in tmp_path.iterdir()] == [f"out{suffix}"]


def test_bad_files_give_one_line_errors(tmp_path):
    (tmp_path / "text.jpg").write_text("not an image")
    truncated = tmp_path / "cut.png"
    Image.new("RGB", (64, 64), "red").save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:60])
    for path, message in [
        (tmp_path / "missing.png", "no such file"),
        (tmp_path, "is a directory"),
        (tmp_path / "text.jpg", "not an image"),
        (truncated, "damaged or truncated"),
    ]:
        with pytest.raises(StyleKerasError, match=message) as raised:
            load_image(path, label="content image")
        assert "\n" not in str(raised.value) and str(path) in str(raised.value)


def test_output_checks(tmp_path, content_path):
    with pytest.raises(StyleKerasError, match="unsupported suffix"):
        check_output_path(tmp_path / "out.gif")
    with pytest.raises(StyleKerasError, match="is a directory"):
        check_output_path(tmp_path)
    with pytest.raises(StyleKerasError, match="one of the input images"):
        check_output_path(content_path, inputs=(content_path,))
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StyleKerasError, match="cannot create directory"):
        check_output_path(blocker / "sub" / "out.png")
    assert check_output_path(tmp_path / "new" / "out.png").parent.is_dir()


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
    with pytest.raises(StyleKerasError, match="more than `max_pixels=1000` allows"):
        load_image(content_path, max_pixels=1000)
    result = runner.invoke(app, ["transfer", str(content_path), str(style_path), "-o", str(tmp_path / "o.png"),
                                 "--max-pixels", "1000"])
    assert result.exit_code == 2 and "more than --max-pixels 1000 allows" in result.stderr  # the flag, on the CLI
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


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch, content_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")

    def crash(self, fp, format=None, **params):
        fp.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", crash)
    with pytest.raises(OutputError, match=r"cannot write '.*out\.png' \(disk full\)"):
        save_image(load_image(content_path), target)
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["out.png"]


@pytest.mark.parametrize("shape, size", [((37, 53), 20), ((53, 37), 128), ((64, 64), 64), ((1, 100), 30), ((99, 3), 10)])
def test_graph_resize_gives_the_library_sizes(shape, size):
    # The served stylizer resizes in its graph, the library eagerly: the same sizes and pixels (to rounding).
    pixels = np.random.default_rng(0).uniform(0, 1, (*shape, 3)).astype(np.float32)
    resized = tf.function(resized_longer_side)(tf.constant(pixels), tf.constant(size))
    assert tuple(resized.shape[:2]) == longer_side_shape(shape, size)
    np.testing.assert_allclose(resized.numpy(), resize_longer_side(pixels, size), rtol=0, atol=1e-5)
