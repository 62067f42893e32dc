"""Batches: the photos of a folder (or a glob pattern), each stylized into an output folder, one at a time
or several of the same size together (`Stylizer.transfer_batch`). Style targets are computed once, since
`Stylizer` remembers the Gram matrices of the style images it has seen."""

from __future__ import annotations

import glob
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from stylekeras import storage
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


def output_for(content: Path | str, folder: Path | str, style: Path) -> Path | str:
    """Where one photo of a batch goes: FOLDER/<photo>_<style>.png (a URL in a folder URL)."""
    name = f"{PurePosixPath(str(content)).stem}_{style.stem}.png"
    return storage.join(str(folder), name) if storage.is_url(folder) else Path(folder) / name


def check_output_folder(folder: Path) -> None:
    """The batch's output folder exists (created if missing) and is writable, before any compute."""
    if folder.exists() and not folder.is_dir():
        raise StyleKerasError(f"output '{folder}' is a file; a folder of photos needs an output folder")
    writable_directory(folder, "output folder")


@dataclass
class BatchSummary:
    """What a batch did: outputs written, outputs skipped because they existed, photos that failed (with
    the one-line reason), photos run again after their worker died (on a cluster: the photo, its tries and
    the step its last try resumed from), and why it stopped early, if it did."""

    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    retried: list[dict[str, str | int]] = field(default_factory=list)
    stop_reason: str | None = None

    def fail(self, content: Path | str, error: str) -> None:
        self.failed.append({"content": str(content), "error": error})


def plan_batch(
    contents: list[Path] | list[str],
    folder: Path | str,
    style: Path,
    skip_existing: bool = False,
    on_passed: Callable[[Path, str | None], None] | None = None,
    batch_size: int = 1,
    batch_key: Callable[[Path], Hashable] | None = None,
) -> tuple[BatchSummary, list[list[Path]]]:
    """The groups of photos to stylize together, and the summary so far (skips and early failures).

    With `batch_size` > 1 only photos with equal `batch_key(content)` (their size at every scale) share
    a group; a photo whose key raises `StyleKerasError` (unreadable, too large) fails before any compute.
    `on_passed(content, error)` hears of each photo skipped or failed here (error None for a skip).
    """
    summary = BatchSummary()
    pending = []
    for content in contents:
        output = output_for(content, folder, style)
        if skip_existing and (storage.exists(output) if storage.is_url(output) else output.exists()):
            summary.skipped.append(str(output))
            if on_passed:
                on_passed(content, None)
        else:
            pending.append(content)
    keyed: dict[Hashable, list[Path]] = {}
    for index, content in enumerate(pending):
        try:
            key = batch_key(content) if batch_size > 1 and batch_key else index
        except StyleKerasError as error:
            summary.fail(content, str(error))
            if on_passed:
                on_passed(content, str(error))
            continue
        keyed.setdefault(key, []).append(content)
    groups = [members[start:start + batch_size] for members in keyed.values()
              for start in range(0, len(members), batch_size)]
    return summary, groups


def run_batch(
    contents: list[Path],
    folder: Path,
    style: Path,
    stylize_group: Callable[[list[Path], list[Path]], list[tuple[str, str | None]]],
    skip_existing: bool = False,
    on_passed: Callable[[Path, str | None], None] | None = None,
    batch_size: int = 1,
    batch_key: Callable[[Path], Hashable] | None = None,
) -> BatchSummary:
    """Stylize the photos with `stylize_group(contents, outputs) -> [(written path, stop reason)]`, one
    list entry per photo, in the groups of `plan_batch` (which takes the other arguments), one after another.

    A group that fails with a `StyleKerasError` is recorded for each of its photos and the batch goes on;
    a photo that stops early (interrupted, non-finite loss) ends the batch.
    """
    summary, groups = plan_batch(contents, folder, style, skip_existing, on_passed, batch_size, batch_key)
    for group in groups:
        try:
            results = stylize_group(group, [output_for(content, folder, style) for content in group])
        except StyleKerasError as error:
            for content in group:
                summary.fail(content, str(error))
                if on_passed:
                    on_passed(content, str(error))
            continue
        summary.written.extend(str(written) for written, _ in results)
        stop_reasons = [stop_reason for _, stop_reason in results if stop_reason]
        if stop_reasons:
            summary.stop_reason = stop_reasons[0]
            return summary
    return summary
