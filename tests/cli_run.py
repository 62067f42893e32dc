"""The CLI run in-process, as the tests of several modules use it."""

from typer.testing import CliRunner

from stylekeras.cli import app

runner = CliRunner()
# A run that shows the mechanics in about a second: 32 px, 4 steps, random weights.
TINY = ["--size", "32", "--steps", "4", "--weights", "random", "--quiet"]


def run_cli(*args):
    """`stylekeras ARGS…` in this process (any argument may be a Path); the click result."""
    return runner.invoke(app, [str(arg) for arg in args])
