"""Where a cluster's photos and results live: local paths, or URLs of any fsspec filesystem (s3://, gs://,
az://, ...; `file://` is a local path).

A worker copies a URL's photo to its scratch folder before stylizing it and its results back after, and
keeps its checkpoints uploaded while it runs, so another worker can resume the photo. Object stores make
each upload atomic (an object appears whole or not at all). Reading a scheme needs fsspec and that
scheme's package (s3fs for s3://, gcsfs for gs://, adlfs for az://).
"""

from __future__ import annotations

import importlib.util
import posixpath
from pathlib import Path
from typing import TYPE_CHECKING

from stylekeras.errors import StyleKerasError

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem


def is_url(location: str | Path) -> bool:
    """A location with a scheme other than file://, e.g. s3://bucket/photos."""
    scheme, separator, _ = str(location).partition("://")
    return bool(separator) and scheme.isidentifier() and scheme != "file"


def local(location: str) -> Path:
    """A location that is not a URL as a path (file:///x is /x)."""
    return Path(location.removeprefix("file://"))


def join(folder: str, name: str) -> str:
    return posixpath.join(folder.rstrip("/"), name)


def name_of(location: str) -> str:
    return posixpath.basename(location.rstrip("/"))


def filesystem(url: str) -> tuple[AbstractFileSystem, str]:
    """The fsspec filesystem of `url` and the path within it; a missing package is a one-line error."""
    if importlib.util.find_spec("fsspec") is None:
        raise StyleKerasError(f"'{url}': URLs need fsspec: pip install \"stylekeras[ray]\"")
    import fsspec

    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as error:
        scheme = url.partition("://")[0]
        raise StyleKerasError(f"'{url}': no filesystem for {scheme}:// ({error})") from None


def photo_urls(url: str) -> list[str]:
    """The image files in the folder `url`, or matching the pattern `url`, by name; hidden ones left out."""
    from stylekeras.batch import PHOTO_SUFFIXES  # batch names outputs with this module's `join`

    fs, path = filesystem(url)
    try:
        found = fs.glob(path) if any(char in path for char in "*?[") else fs.ls(path, detail=False)
    except (OSError, ValueError) as error:
        raise StyleKerasError(f"'{url}' cannot be listed ({error})") from None
    photos = sorted(fs.unstrip_protocol(item) for item in found
                    if posixpath.splitext(item)[1].lower() in PHOTO_SUFFIXES and not name_of(item).startswith("."))
    if not photos:
        raise StyleKerasError(f"'{url}' matches no images ({', '.join(sorted(PHOTO_SUFFIXES))})")
    return photos


def check_writable(url: str) -> None:
    """Write and delete a marker in the folder `url`, before any compute."""
    fs, path = filesystem(url)
    marker = join(path, ".stylekeras-write-check")
    try:
        fs.pipe_file(marker, b"")
        fs.rm_file(marker)
    except (OSError, ValueError) as error:
        raise StyleKerasError(f"output folder '{url}' is not writable ({error})") from None


def exists(url: str) -> bool:
    fs, path = filesystem(url)
    return fs.exists(path)


def download(url: str, target: Path) -> None:
    fs, path = filesystem(url)
    try:
        fs.get_file(path, str(target))
    except (OSError, ValueError) as error:
        raise StyleKerasError(f"'{url}' cannot be read ({error})") from None


def upload(source: Path, url: str) -> None:
    fs, path = filesystem(url)
    try:
        fs.put_file(str(source), path)
    except (OSError, ValueError) as error:
        raise StyleKerasError(f"'{url}' cannot be written ({error})") from None


def remove(url: str) -> None:
    fs, path = filesystem(url)
    if fs.exists(path):
        fs.rm_file(path)
