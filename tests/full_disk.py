"""Writes that fail as on a full disk, as the tests of several modules need them."""

import contextlib
import resource


@contextlib.contextmanager
def files_limited_to(size):
    """Within the block, a write that would grow a file of this process past `size` bytes fails with
    OSError ("File too large", EFBIG), as a write to a full disk fails with ENOSPC (Python ignores SIGXFSZ)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
