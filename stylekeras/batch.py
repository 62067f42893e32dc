"""Batches: the photos of a folder (or a glob pattern), each stylized into an output folder. Style
targets are computed once, since `Stylizer` remembers the Gram matrices of the style images it has seen."""

from __future__ import annotations

import glob
from collections.abc import Callable
from dataclasses import dataclass, field
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


@dataclass
class BatchSummary:
    """What a batch did: outputs written, outputs skipped because they existed, photos that failed (with
    the one-line reason), and why it stopped early, if it did."""

    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    stop_reason: str | None = None


def run_batch(
    contents: list[Path],
    folder: Path,
    style: Path,
    stylize_one: Callable[[Path, Path], tuple[Path, str | None]],
    skip_existing: bool = False,
    on_passed: Callable[[Path, str | None], None] | None = None,
) -> BatchSummary:
    """Stylize each photo with `stylize_one(content, output) -> (written path, stop reason)`.

    A photo that fails with a `StyleKerasError` is recorded and the batch goes on; a photo that stops
    early (interrupted, non-finite loss) ends the batch. `on_passed(content, error)` hears of each photo
    skipped or failed before it ran (error None for a skip).
    """
    summary = BatchSummary()
    for content in contents:
        output = output_for(content, folder, style)
        if skip_existing and output.exists():
            summary.skipped.append(str(output))
            if on_passed:
                on_passed(content, None)
            continue
        try:
            written, stop_reason = stylize_one(content, output)
        except StyleKerasError as error:
            summary.failed.append({"content": str(content), "error": str(error)})
            if on_passed:
                on_passed(content, str(error))
            continue
        summary.written.append(str(written))
        if stop_reason:
            summary.stop_reason = stop_reason
            break
    return summary
