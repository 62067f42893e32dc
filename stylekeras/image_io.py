"""Image loading and saving: any Pillow-readable image in, float32 RGB in [0, 1] out."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Union

import numpy as np
import tensorflow as tf
from PIL import ExifTags, Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from stylekeras.atomic import atomic_write, writable_directory
from stylekeras.defaults import DEFAULT_MAX_PIXELS
from stylekeras.errors import OutputError, StyleKerasError
from stylekeras.input_files import check_input_file

# PNG files carry a run report in an iTXt chunk named "stylekeras"; JPEG and WebP files in the EXIF
# UserComment, as "stylekeras:" followed by the JSON.
REPORT_KEY = "stylekeras"
_EXIF_ASCII = b"ASCII\x00\x00\x00"  # the EXIF character-code prefix of a UserComment

ImageSource = Union[str, os.PathLike, Image.Image, np.ndarray, tf.Tensor]

SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}


def load_image(
    source: ImageSource, size: int | None = None, label: str = "image", max_pixels: int = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """Return `source` as a float32 H×W×3 RGB array in [0, 1].

    `source` is a path, a PIL image, or an array/tensor (H×W×3 or 1×H×W×3; uint8 in [0, 255] or float in
    [0, 1]). With `size`, the image is resized so that its longer side is `size` pixels. `label` names the
    image in error messages ("content image", "style image"). Images over `max_pixels` are refused.
    """
    if isinstance(source, (str, os.PathLike)):
        pixels = _pil_to_array(_open_path(Path(source), label, max_pixels))
        label = f"{label} '{source}'"
    elif isinstance(source, Image.Image):
        _check_pixel_count(source.width, source.height, max_pixels, label)
        pixels = _pil_to_array(source)
    else:
        pixels = _array_to_float(np.asarray(source), label)
        _check_pixel_count(pixels.shape[1], pixels.shape[0], max_pixels, label)
    if size is not None:
        pixels = resize_longer_side(pixels, size)
    if min(pixels.shape[:2]) < 1:
        raise StyleKerasError(f"{label} has no pixels ({pixels.shape[1]}×{pixels.shape[0]})")
    return pixels


def longer_side_shape(shape: tuple[int, ...], size: int) -> tuple[int, int]:
    """The (height, width) an image of `shape` gets when its longer side becomes `size`."""
    height, width = shape[:2]
    scale = size / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize_longer_side(pixels: np.ndarray, size: int) -> np.ndarray:
    """Resize an H×W×3 array so that its longer side is `size`, keeping the aspect ratio."""
    if longer_side_shape(pixels.shape, size) == pixels.shape[:2]:
        return pixels
    return resized_longer_side(tf.constant(pixels), size).numpy()


def longer_side_shape_tensor(shape: tf.Tensor, size: int | tf.Tensor) -> tf.Tensor:
    """`longer_side_shape` in TensorFlow ops: int32 (height, width) from a run-time (height, width)."""
    height, width = tf.cast(shape[0], tf.float64), tf.cast(shape[1], tf.float64)
    scale = tf.cast(size, tf.float64) / tf.maximum(height, width)  # Python's round() and tf.round both round half to even
    return tf.maximum(1, tf.cast(tf.round(tf.stack([height * scale, width * scale])), tf.int32))


def resized_longer_side(images: tf.Tensor, size: int | tf.Tensor) -> tf.Tensor:
    """`resize_longer_side` in TensorFlow ops, for graphs (`stylekeras.serving`): `[..., H, W, 3]` images
    whose shape may be known only at run time, the same sizes as `longer_side_shape`."""
    shape = tf.shape(images)
    new_shape = longer_side_shape_tensor(shape[-3:-1], size)
    # Antialiasing matters when shrinking photos: without it, fine texture aliases into the Gram matrices.
    return tf.cond(
        tf.reduce_all(new_shape == shape[-3:-1]),
        lambda: images,
        lambda: tf.clip_by_value(tf.image.resize(images, new_shape, method="lanczos3", antialias=True), 0.0, 1.0),
    )


def save_image(pixels: np.ndarray | tf.Tensor, path: str | os.PathLike, report: dict | None = None) -> Path:
    """Write an H×W×3 float image in [0, 1] as PNG, JPEG or WebP (chosen by suffix), atomically.

    The image goes to a temporary file in the same directory first and is renamed over `path`, so a
    crash never leaves a half-written file where a good one was. A `report` (see `stylekeras.report`) is
    embedded in the file. A file that cannot be written (a full disk) raises `OutputError` naming it.
    """
    path = Path(path)
    image_format = _format_for(path)
    array = np.asarray(pixels, dtype=np.float32)
    if array.ndim == 4:
        array = array[0]
    as_bytes = to_uint8(array)
    options = {"quality": 95} if image_format in ("JPEG", "WEBP") else {}
    if report is not None:
        options.update(_report_options(image_format, report))
    try:
        with atomic_write(path) as stream:
            Image.fromarray(as_bytes, "RGB").save(stream, format=image_format, **options)
    except OSError as error:  # a full disk: the file before, if any, is kept (`atomic_write`)
        raise OutputError(f"cannot write '{path}' ({error.strerror or error})") from None
    return path


def _report_options(image_format: str, report: dict) -> dict:
    """Keyword arguments for PIL's `save` that embed `report` in a PNG, JPEG or WebP file."""
    text = json.dumps(report, sort_keys=True)
    if image_format == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_itxt(REPORT_KEY, text)
        return {"pnginfo": info}
    exif = Image.Exif()
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.UserComment] = _EXIF_ASCII + f"{REPORT_KEY}:{text}".encode()
    return {"exif": exif}


def read_report(path: str | os.PathLike) -> dict:
    """The report embedded in an image written by stylekeras."""
    try:
        with Image.open(path) as image:
            text = getattr(image, "text", {}).get(REPORT_KEY)
            if text is None:
                comment = image.getexif().get_ifd(ExifTags.IFD.Exif).get(ExifTags.Base.UserComment, b"")
                prefix = _EXIF_ASCII + f"{REPORT_KEY}:".encode()
                text = comment[len(prefix):].decode() if comment.startswith(prefix) else None
    except (OSError, UnidentifiedImageError) as error:
        raise StyleKerasError(f"'{path}' is not a readable image ({error})") from None
    if text is None:
        raise StyleKerasError(f"'{path}' carries no stylekeras report (was it written by stylekeras?)")
    return json.loads(text)


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    """Float pixels in [0, 1] → uint8, rounded."""
    return np.round(np.clip(pixels, 0.0, 1.0) * 255.0).astype(np.uint8)


def check_output_path(path: str | os.PathLike, inputs: tuple[ImageSource, ...] = (),
                      check_format: Callable[[Path], object] | None = None) -> Path:
    """Fail early, before any compute, if an image cannot be saved at `path`.

    Creates missing parent directories. `inputs` are the run's input images: the output may not be one
    of them. `check_format` refuses a suffix it cannot write (default: the image formats).
    """
    path = Path(path)
    if path.is_dir():
        raise StyleKerasError(f"output '{path}' is a directory; give a file name such as '{path / 'out.png'}'")
    (check_format or _format_for)(path)
    for source in inputs:
        if isinstance(source, (str, os.PathLike)) and Path(source).exists() and path.exists():
            if path.samefile(source):
                raise StyleKerasError(f"output '{path}' is one of the input images; choose another name")
    writable_directory(path.parent, f"output '{path}'")
    if path.exists() and not os.access(path, os.W_OK):
        raise StyleKerasError(f"output '{path}' exists and is not writable")
    return path


def _format_for(path: Path) -> str:
    image_format = SAVE_FORMATS.get(path.suffix.lower())
    if image_format is None:
        raise StyleKerasError(
            f"output '{path}': unsupported suffix '{path.suffix}'; use one of {', '.join(SAVE_FORMATS)}"
        )
    return image_format


def _check_pixel_count(width: int, height: int, max_pixels: int, label: str) -> None:
    if width * height > max_pixels:
        raise StyleKerasError(
            f"{label} is {width}×{height} = {width * height / 1e6:.0f} megapixels, more than "
            f"`max_pixels={max_pixels}` allows"
        )


def _open_path(path: Path, label: str, max_pixels: int) -> Image.Image:
    check_input_file(path, label)
    try:
        image = Image.open(path)
        _check_pixel_count(image.width, image.height, max_pixels, f"{label} '{path}'")  # from the header only
        image.load()
    except UnidentifiedImageError:
        raise StyleKerasError(f"{label} '{path}' is not an image Pillow can read") from None
    except Image.DecompressionBombError as error:
        raise StyleKerasError(f"{label} '{path}' is too large to decode safely ({error})") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise StyleKerasError(f"{label} '{path}' is damaged or truncated ({error})") from None
    return image


def _pil_to_array(image: Image.Image) -> np.ndarray:
    """Convert any Pillow mode to float RGB, after applying the EXIF orientation."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit, 32-bit and float grayscale: Pillow's convert("RGB") would clip values above 255 to white,
        # and float files come in [0, 1] or in an integer format's range, so the values say which.
        gray = np.nan_to_num(np.asarray(image, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        brightest = float(gray.max(initial=0.0))
        if image.mode.startswith("I;16") or brightest > 255:
            peak = 65535.0
        elif image.mode == "I" or brightest > 1:
            peak = 255.0
        else:
            peak = 1.0
        return np.repeat((gray / peak)[..., None], 3, axis=-1).clip(0.0, 1.0)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Transparent pixels are composited on white, as an image viewer shows them.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0


def _array_to_float(array: np.ndarray, label: str) -> np.ndarray:
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=-1)
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4):
        raise StyleKerasError(f"{label}: expected an H×W×3 array, got shape {array.shape}")
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    array = array[..., :3]
    if np.issubdtype(array.dtype, np.integer):
        peak = 65535.0 if array.dtype == np.uint16 else 255.0
        return np.clip(array.astype(np.float32) / peak, 0.0, 1.0)
    array = array.astype(np.float32)
    if not np.all(np.isfinite(array)) or array.min() < 0.0 or array.max() > 1.0:
        raise StyleKerasError(f"{label}: float pixels must be finite and in [0, 1]")
    return array
