"""The one exception type the library raises for problems a user can fix."""

import importlib
from collections.abc import Sequence
from types import ModuleType


class StyleKerasError(Exception):
    """Bad input or a missing resource, worded as one line a user can act on.

    Messages name the Python parameter in backticks (`tile`, or `tile=512` with a value), as Keras does;
    the CLI prints the message alone (no traceback) with each one spelled as its flag (`stylekeras.flags`)
    and exits with code 2.
    """


class OutputError(StyleKerasError):
    """A result that could not be written after the run (a full disk, a file-size limit): the CLI exits
    with code 1, as for other failures while running, not 2."""


def check_choice(option: str, value: object, choices: Sequence[object]) -> None:
    """Raise a one-line `StyleKerasError` when `value` is not one of `choices` (`option` names the parameter, in backticks)."""
    if value not in choices:
        raise StyleKerasError(f"{option} '{value}' is not one of {', '.join(map(str, choices))}")


def import_extra(module: str, extra: str, needed_for: str) -> ModuleType:
    """Import an optional dependency, or raise a one-line `StyleKerasError` naming the extra that brings it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise StyleKerasError(f'{needed_for} needs the {module} package: pip install "stylekeras[{extra}]"') from None
