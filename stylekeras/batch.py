"""Batches: the photos of a folder, each stylized into an output folder (style targets computed once,
since `Stylizer` remembers the Gram matrices of the style images it has seen)."""

from __future__ import annotations

import glob
from pathlib import Path

from stylekeras.atomic import writable_directory
from stylekeras.errors import StyleKerasError

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}


def is_batch(content: Path) -> bool:
    """A folder, or a quoted glob pattern such as 'photos/*.jpg', means several photos."""
    return content.is_dir() or (not content.exists() and any(char in str(content) for char in "*?["))


def content_files(content: Path) -> list[Path]:
    """The image files directly in a folder, or those matching a glob pattern, by name; hidden ones left out."""
    candidates = content.iterdir() if content.is_dir() else map(Path, glob.glob(str(content)))
    files = sorted(p for p in candidates if p.suffix.lower() in PHOTO_SUFFIXES and not p.name.startswith(".") and p.is_file())
    if not files:
        raise StyleKerasError(f"'{content}' matches no images ({', '.join(sorted(PHOTO_SUFFIXES))})")
    return files


def output_for(content: Path, folder: Path, style: Path) -> Path:
    """Where one photo of a batch goes: FOLDER/<photo>_<style>.png."""
    return folder / f"{content.stem}_{style.stem}.png"


def check_output_folder(folder: Path) -> None:
    """The batch's output folder exists (created if missing) and is writable, before any compute."""
    if folder.exists() and not folder.is_dir():
        raise StyleKerasError(f"output '{folder}' is a file; a folder of photos needs an output folder")
    writable_directory(folder, "output folder")
