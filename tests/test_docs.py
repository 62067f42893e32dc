"""docs/make_reference.py: the generated reference pages match the code."""

import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_generated_reference_pages_are_up_to_date():
    sys.path.insert(0, str(ROOT / "docs"))
    import make_reference

    assert (ROOT / "docs/cli.md").read_text() == make_reference.cli_reference(), "run python docs/make_reference.py"
    assert (ROOT / "docs/api.md").read_text() == make_reference.api_reference(), "run python docs/make_reference.py"
