"""``python -m ganbench.reproduce``: train the nine seed systems (``sweep=reproduce``), check every claim, write the table.

    python -m ganbench.reproduce                       # the sweep (resumes after a kill), then REPRODUCTION.md
    python -m ganbench.reproduce --report-only         # only the table, from the newest reproduction sweep
    python -m ganbench.reproduce out=benchmarks tracking.uri=sqlite:///repro.db
    python -m ganbench.reproduce sweep=reproduce_full device=cuda   # the reports' own lengths
Arguments other than ``out=``, ``parent=`` and ``--report-only`` are Hydra overrides for the sweep; ``tracking.uri=``
and ``tracking.experiment=`` are read back by the table too.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from ganbench.errors import EXIT_USAGE, UserError, print_error
from ganbench.reproduce.claims import evaluate
from ganbench.reproduce.render import write
from ganbench.reproduce.runs import load
from ganbench.tracking import check_reachable, make_client, sqlite_path

PROG = "ganbench.reproduce"
EXPERIMENTS = {"reproduce": "reproduce", "reproduce_full": "reproduce_full"}  # each sweep's tracking.experiment


class ReproduceError(UserError):
    """The table cannot be written as asked."""


def split_args(argv: Sequence[str]) -> tuple[dict[str, str], list[str], bool]:
    """``(own options, Hydra overrides, report_only)``."""
    own, overrides, report_only = {}, [], False
    for arg in argv:
        key, _, value = arg.partition("=")
        if arg == "--report-only":
            report_only = True
        elif key in ("out", "parent"):
            own[key] = value
        elif arg.startswith("-") and arg not in ("-h", "--help"):
            raise ReproduceError(f"unknown option {arg!r}: the options are --report-only, out=DIR, parent=ID|latest")
        else:
            overrides.append(arg)
    return own, overrides, report_only


def override(overrides: Sequence[str], key: str, default: str) -> str:
    return next((o.split("=", 1)[1] for o in reversed(overrides) if o.startswith(f"{key}=")), default)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return 0
    try:
        own, overrides, report_only = split_args(argv)
        rc = 0
        sweep = override(overrides, "sweep", "reproduce")
        if sweep not in EXPERIMENTS:
            raise ReproduceError(f"sweep={sweep!r}: choose reproduce (the 2-hour budget) or reproduce_full (the reports' lengths)")
        if not report_only:
            cmd = [sys.executable, "-m", "ganbench", "-m", *([] if any(o.startswith("sweep=") for o in overrides) else ["sweep=reproduce"]), *overrides]
            print("$", " ".join(cmd[1:]), flush=True)
            rc = subprocess.run(cmd).returncode  # a killed or failed sweep still gets its (partial) table
        uri = override(overrides, "tracking.uri", "sqlite:///mlflow.db")
        check_reachable(uri)
        db = sqlite_path(uri)
        if db is not None and not db.exists():
            raise ReproduceError(f"no MLflow store at {uri}; run the reproduction first or pass tracking.uri=")
        client = make_client(uri)
        rep = load(client, override(overrides, "tracking.experiment", EXPERIMENTS[sweep]), own.get("parent", "latest"))
        command = " ".join(["python -m ganbench.reproduce", *argv])
        paths = write(rep, evaluate(rep.systems), Path(own.get("out", "benchmarks")), command)
    except UserError as exc:
        print_error(PROG, exc)
        return EXIT_USAGE
    print(f"reproduction table: {paths['md'].resolve()} (and {paths['html'].name})")
    return rc


if __name__ == "__main__":
    sys.exit(main())
