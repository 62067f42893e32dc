"""The one exception type the library raises for problems a user can fix."""

from collections.abc import Sequence


class StyleKerasError(Exception):
    """Bad input or a missing resource, worded as one line a user can act on.

    Messages name the Python parameter in backticks (`tile`, or `tile=512` with a value), as Keras does;
    the CLI prints the message alone (no traceback) with each one spelled as its flag (`stylekeras.flags`)
    and exits with code 2.
    """


def check_choice(option: str, value: object, choices: Sequence[object]) -> None:
    """Raise a one-line `StyleKerasError` when `value` is not one of `choices` (`option` names the parameter, in backticks)."""
    if value not in choices:
        raise StyleKerasError(f"{option} '{value}' is not one of {', '.join(map(str, choices))}")
