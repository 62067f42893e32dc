"""Library messages on the command line: a parameter named `tile` (or `tile=512`) reads as --tile (--tile 512).

The library names Python parameters, so `Stylizer` users see their own argument names; the CLI passes
every message it shows through `spell_flags` with the running command's options (`command_flags`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import click

_PARAMETER = re.compile(r"`(\w+)(?:=([^`]*))?`")
_QUOTED_WORD = re.compile(r"'([\w.-]+)'")


def command_flags(context: click.Context) -> dict[str, str]:
    """Parameter name → its first long flag, for the command of a typer (or click) context."""
    flags = {}
    for param in context.command.params:
        long_names = [name for name in param.opts if name.startswith("--")]
        if long_names:
            flags[param.name] = long_names[0]
    return flags


def spell_flags(message: str, flags: Mapping[str, str]) -> str:
    """`message` with each backticked parameter found in `flags` written as that flag; others stay as written."""
    def spell(match: re.Match) -> str:
        flag = flags.get(match[1])
        if flag is None:
            return match[0]
        if match[2] is None:
            return flag
        word = _QUOTED_WORD.fullmatch(match[2])  # 'mixed' → mixed; a quoted path keeps its quotes
        return f"{flag} {word[1] if word else match[2]}"

    return _PARAMETER.sub(spell, message)
