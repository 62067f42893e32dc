"""stylekeras.atomic: a write killed half-way leaves the old file, and its temporary can be cleared."""

import subprocess
import sys

from stylekeras.atomic import remove_leftovers

KILLED_WRITE = """
import os, sys
from stylekeras.atomic import atomic_write
with atomic_write(sys.argv[1]) as stream:
    stream.write(b"half of the new")
    stream.flush()
    os._exit(9)  # like SIGKILL: no cleanup runs
"""


def test_a_killed_write_keeps_the_old_file_and_its_leftover_can_be_removed(tmp_path):
    output, neighbour = tmp_path / "out.png", tmp_path / "out.png2"
    output.write_bytes(b"old")
    neighbour.write_bytes(b"other")
    (tmp_path / ".out.png2.abc.tmp").write_bytes(b"another file's temporary")
    completed = subprocess.run([sys.executable, "-c", KILLED_WRITE, str(output)])
    assert completed.returncode == 9 and output.read_bytes() == b"old"
    (leftover,) = tmp_path.glob(".out.png.*.tmp")
    assert leftover.read_bytes() == b"half of the new"
    remove_leftovers(output)
    assert not leftover.exists() and output.read_bytes() == b"old"
    assert (tmp_path / ".out.png2.abc.tmp").exists() and neighbour.read_bytes() == b"other"
