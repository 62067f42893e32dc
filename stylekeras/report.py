"""Run reports: the settings and outcome behind an image, embedded in the image itself and as JSON.

PNG files carry the report in an iTXt chunk named "stylekeras"; JPEG and WebP files in the EXIF
UserComment, as "stylekeras:" followed by the JSON. `read_report` reads either back.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from PIL import ExifTags, Image, PngImagePlugin, UnidentifiedImageError

from stylekeras.atomic import atomic_write
from stylekeras.errors import StyleKerasError

REPORT_KEY = "stylekeras"
_EXIF_ASCII = b"ASCII\x00\x00\x00"  # the EXIF character-code prefix of a UserComment


def run_report(result, model: dict, inputs: dict | None = None, **extra) -> dict:
    """The report of a `StyleResult`: versions, model, settings, inputs, duration, final losses."""
    from stylekeras import __version__

    history = result.history
    return {
        "versions": {"stylekeras": __version__, "tensorflow": tf.__version__, "keras": keras.__version__},
        "model": model,
        "settings": asdict(result.settings),
        "inputs": inputs or {},
        "steps_done": result.steps_done,
        "seconds": round(result.seconds, 2),
        "device": result.device,
        "stop_reason": result.stop_reason,
        "final_losses": {name: float(values[-1]) for name, values in history.items() if name != "size" and len(values)},
        **extra,
    }


def image_metadata(image_format: str, report: dict) -> dict:
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


def write_report_json(path: str | os.PathLike, report: dict, history: dict[str, np.ndarray]) -> Path:
    """The report plus the per-step loss history, as JSON, written atomically."""
    full = {**report, "history": {name: np.asarray(values).tolist() for name, values in history.items()}}
    with atomic_write(path) as stream:
        stream.write(json.dumps(full, indent=2).encode())
    return Path(path)
