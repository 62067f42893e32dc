"""What native runtimes print: TensorFlow's and Ray's C++ code write to file descriptor 2 directly, past
Python's `sys.stderr`, lines a user cannot act on (CUDA probes, CPU flags, connection retries)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Hide what native code prints to fd 2 while the block runs (TensorFlow's log level set to errors)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
