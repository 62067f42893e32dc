"""The one exception type the library raises for problems a user can fix."""


class StyleKerasError(Exception):
    """Bad input or a missing resource, worded as one line a user can act on.

    The CLI prints the message alone (no traceback) and exits with code 2.
    """
