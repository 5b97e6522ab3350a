"""The errors a user fixes by changing the command, and how every ganbench CLI prints them.

Each CLI catches ``UserError`` and prints it through ``print_error``: one line per problem,
prefixed by the program's name, no traceback, exit status 2 (``EXIT_USAGE``).
"""

from __future__ import annotations

import sys

EXIT_USAGE = 2  # every bad-input exit, as argparse and Hydra's own usage errors


class UserError(Exception):
    """A problem with what the user asked for: the message says what is wrong and what to do."""


class ConfigError(UserError, ValueError):
    """One or more invalid config values; the message has one line per problem."""


def first_line(exc: BaseException | str, limit: int = 200) -> str:
    """The first non-empty line of an exception's message (or its type name), at most ``limit`` characters."""
    text = exc if isinstance(exc, str) else str(exc)
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return "" if isinstance(exc, str) else type(exc).__name__
    return lines[0].strip()[:limit]


def print_error(prog: str, exc: BaseException | str, kind: str = "error") -> None:
    """``<prog>: error: <line>`` on stderr for every line of the message."""
    for line in str(exc).splitlines() or [""]:
        print(f"{prog}: {kind}: {line}", file=sys.stderr)
