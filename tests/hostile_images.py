"""Generate a corpus of hostile and odd image files (nothing downloaded): `make_corpus(folder)`.

Each entry says what a run must do with it: "works" (with the stated check of orientation or colour) or
"fails" (one clear line, exit code 2).
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def _png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares a huge image: a decompression bomb for naive decoders."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def _encoded(image: Image.Image, image_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def make_corpus(folder: Path) -> dict[str, tuple[Path, str]]:
    """Write the corpus into `folder`; returns name → (path, "works" | "fails")."""
    folder.mkdir(parents=True, exist_ok=True)
    gradient = np.linspace(0, 255, 64 * 48, dtype=np.uint8).reshape(48, 64)
    rgb = Image.fromarray(np.stack([gradient, 255 - gradient, np.full_like(gradient, 90)], axis=-1))
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated 90° clockwise: 48 wide, 64 tall
    frames = [Image.new("RGB", (40, 40), color) for color in ("red", "blue")]
    animated_gif, animated_webp = io.BytesIO(), io.BytesIO()
    frames[0].save(animated_gif, format="GIF", save_all=True, append_images=frames[1:])
    frames[0].save(animated_webp, format="WEBP", save_all=True, append_images=frames[1:])
    corpus = {
        "zero_bytes.jpg": (b"", "fails"),
        "truncated.jpg": (_encoded(rgb, "JPEG")[:300], "fails"),
        "truncated.png": (_encoded(rgb, "PNG")[:200], "fails"),
        "png_named.jpg": (_encoded(rgb, "PNG"), "works"),
        "text.jpg": (b"this is not an image\n", "fails"),
        "bomb.png": (_png_declaring(100_000, 100_000), "fails"),
        "one_pixel.png": (_encoded(Image.new("RGB", (1, 1), "green"), "PNG"), "works"),
        "extreme_aspect.png": (_encoded(Image.new("RGB", (10_000, 8), "gray"), "PNG"), "fails"),
        "grayscale.png": (_encoded(rgb.convert("L"), "PNG"), "works"),
        "palette.png": (_encoded(rgb.convert("P"), "PNG"), "works"),
        "rgba.png": (_encoded(Image.new("RGBA", (40, 40), (255, 0, 0, 0)), "PNG"), "works"),
        "cmyk.jpg": (_encoded(rgb.convert("CMYK"), "JPEG"), "works"),
        "sixteen_bit.png": (_encoded(Image.fromarray((gradient.astype(np.uint16) * 257)), "PNG"), "works"),
        "float.tif": (_encoded(Image.fromarray(gradient.astype(np.float32)), "TIFF"), "works"),
        "exif_rotated.jpg": (_encoded(rgb, "JPEG", exif=exif), "works"),
        "animated.gif": (animated_gif.getvalue(), "works"),
        "animated.webp": (animated_webp.getvalue(), "works"),
        "vector.svg": (b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', "fails"),
    }
    entries = {}
    for name, (data, expected) in corpus.items():
        path = folder / name
        path.write_bytes(data)
        entries[name] = (path, expected)
    (folder / "a_directory.png").mkdir(exist_ok=True)
    entries["a_directory.png"] = (folder / "a_directory.png", "fails")
    return entries
