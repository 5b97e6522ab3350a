"""The errors a user fixes by changing the command, and how every ganbench CLI prints them.

Each CLI catches ``UserError`` and prints it through ``print_error``: one line per problem,
prefixed by the program's name, no traceback, exit status 2 (``EXIT_USAGE``). The Hydra commands
run their ``@hydra.main`` function through ``run_compact``, so Hydra's own usage errors read the same.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

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


def hydra_message(text: str) -> str:
    """Hydra's composition error in one line: its lines joined, each list of options inline, no search path."""
    parts: list[str] = []
    for line in text.splitlines():
        if line.startswith("Config search path"):
            break
        if line.startswith("\t") and parts:
            parts[-1] += (" " if parts[-1].endswith(":") else ", ") + line.strip()
        elif line.strip():
            parts.append(line.strip())
    message = parts[0] if parts else ""
    for part in parts[1:]:
        message += (" " if message.endswith((".", ":")) else "; ") + part
    return message


def run_compact(main: Callable[[], T], prog: str) -> T:
    """Run a ``@hydra.main`` function with Hydra's own usage errors (an unknown ``dataset=...``, a misspelt key, a
    malformed override) reported as ganbench's: one ``print_error`` line and exit status 2.

    Hydra prints those itself, over several lines with a stack-trace hint, and exits 1; HYDRA_FULL_ERROR makes it
    raise them instead. Errors of ganbench itself, and the function's own exits, pass through unchanged.
    """
    # Imported here: most commands that import this module run no Hydra app, and hydra costs ~0.1 s to import.
    from hydra.errors import CompactHydraException

    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    try:
        return main()
    except CompactHydraException as exc:
        print_error(prog, hydra_message(str(exc)))
        sys.exit(EXIT_USAGE)


def run_script(main: Callable[[], T], prog: str) -> T:
    """A script's ``main`` (the benchmarks) with bad input as one line and exit status 2: Hydra's composition errors
    (an unknown ``model=...``, a misspelt key) and ganbench's own ``UserError`` (missing data, a bad setting)."""
    try:
        return run_compact(main, prog)
    except UserError as exc:
        print_error(prog, exc)
        sys.exit(EXIT_USAGE)
