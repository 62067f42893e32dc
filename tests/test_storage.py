"""stylekeras.storage: folder URLs listed, checked and copied through fsspec (memory:// stands for any scheme)."""

import uuid

import fsspec
import pytest

from stylekeras import storage
from stylekeras.errors import StyleKerasError


@pytest.fixture
def bucket():
    """A fresh folder in fsspec's in-memory filesystem, as memory://NAME."""
    name = f"bucket-{uuid.uuid4().hex[:8]}"
    yield f"memory://{name}"
    fsspec.filesystem("memory").rm(f"/{name}", recursive=True)


@pytest.mark.parametrize("location, url", [
    ("s3://bucket/photos", True), ("gs://b/x.jpg", True), ("memory://x", True), ("file:///tmp/x", False),
    ("photos/", False), ("/abs/path", False), ("C:/photos", False), ("weird name://x", False)])
def test_urls_are_locations_with_a_scheme_other_than_file(location, url):
    assert storage.is_url(location) is url


def test_a_folder_url_lists_its_photos_by_name_without_hidden_files_or_others(bucket):
    fs = fsspec.filesystem("memory")
    for name in ("b.jpg", "a.PNG", ".hidden.jpg", "notes.txt"):
        fs.pipe(f"{bucket}/photos/{name}", b"x")
    listed = fs.unstrip_protocol(fsspec.core.url_to_fs(f"{bucket}/photos")[1])  # fsspec's spelling: memory:///NAME
    assert storage.photo_urls(f"{bucket}/photos") == [f"{listed}/a.PNG", f"{listed}/b.jpg"]
    assert storage.photo_urls(f"{bucket}/photos/b*") == [f"{listed}/b.jpg"]
    with pytest.raises(StyleKerasError, match="matches no images"):
        storage.photo_urls(f"{bucket}/photos/*.webp")


def test_files_go_both_ways_and_the_write_check_leaves_nothing(bucket, tmp_path):
    storage.check_writable(f"{bucket}/out")
    assert not fsspec.filesystem("memory").exists(f"{bucket}/out/.stylekeras-write-check")
    (tmp_path / "a.png").write_bytes(b"pixels")
    storage.upload(tmp_path / "a.png", f"{bucket}/out/a.png")
    assert storage.exists(f"{bucket}/out/a.png")
    storage.download(f"{bucket}/out/a.png", tmp_path / "back.png")
    assert (tmp_path / "back.png").read_bytes() == b"pixels"
    storage.remove(f"{bucket}/out/a.png")
    assert not storage.exists(f"{bucket}/out/a.png")
    with pytest.raises(StyleKerasError, match="cannot be read"):
        storage.download(f"{bucket}/out/missing.png", tmp_path / "x.png")


def test_an_unknown_scheme_is_one_line():
    with pytest.raises(StyleKerasError, match="no filesystem for nosuchscheme://"):
        storage.photo_urls("nosuchscheme://bucket/photos")
