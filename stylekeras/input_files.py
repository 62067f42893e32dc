"""Checks on the files a command names that need neither a decoder nor TensorFlow: the CLI runs them before
TensorFlow's import, which takes seconds, so a mistyped file name fails at once."""

from __future__ import annotations

from pathlib import Path

from stylekeras.errors import StyleKerasError


def check_input_file(path: Path, label: str) -> None:
    """Raise StyleKerasError naming `label` (e.g. "content image") and `path` unless `path` is an existing file."""
    if not path.exists():
        raise StyleKerasError(f"{label} '{path}': no such file")
    if path.is_dir():
        raise StyleKerasError(f"{label} '{path}' is a directory, not a file")
