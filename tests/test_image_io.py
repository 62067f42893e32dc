import numpy as np
import pytest
from PIL import Image

from stylekeras.errors import StyleKerasError
from stylekeras.image_io import check_output_path, load_image, save_image


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
