"""Writing files safely: atomic writes (a crash or kill at any moment leaves the old file or the new one,
never half of one) and output directories checked before any compute."""

from __future__ import annotations

import contextlib
import glob
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from stylekeras.errors import StyleKerasError


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, private: bool = False) -> Iterator[BinaryIO]:
    """Yield a binary stream; on success it is fsynced and renamed over `path`, on failure removed.

    The temporary file is a hidden sibling in the same directory, so the rename stays on one filesystem.
    Files get the usual permissions (0666 less the umask) unless `private`.
    """
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if not private:
            os.fchmod(handle, 0o666 & ~_umask())
        with os.fdopen(handle, "wb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def remove_leftovers(path: str | os.PathLike) -> None:
    """Delete the temporaries `atomic_write` left beside `path` when its process was killed mid-write
    (SIGKILL runs no cleanup). Only for a file no other process is writing."""
    path = Path(path)
    for leftover in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        leftover.unlink(missing_ok=True)


def writable_directory(folder: Path, what: str) -> Path:
    """Create `folder` if it is missing and check it can be written to; `what` names it in errors."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StyleKerasError(f"{what}: cannot create directory '{folder}' ({error.strerror})") from None
    if not os.access(folder, os.W_OK):
        raise StyleKerasError(f"{what}: directory '{folder}' is not writable")
    return folder


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
