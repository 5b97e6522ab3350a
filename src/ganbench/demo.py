"""``make demo`` / ``python -m ganbench.demo``: the whole product, with digits a person can read, in minutes.

About 7-11 minutes on 2 CPU cores the first time (from an empty cache, the quick classifier's training included):
6 min 43 s on a Zen 4 EPYC, whose bf16 fast_hoda trains in; 8 min 5 s to 10 min 48 s on an EPYC without bf16, in
float32 (README.md gives each measurement).

1. the ``demo`` grid (``sweeps/demo.yaml``: the fast_hoda preset with its projection D vs with ACGAN's class
   head x 2 seeds on Hoda, 3,000 generator steps each) as one multirun: one MLflow parent run, four child runs
   with their samples, losses, generator models and evaluation;
2. the leaderboard of that sweep (``ganbench.report``), logged to its parent run;
3. where the report is, the ``mlflow ui`` command that shows the runs, and the ``ganbench.sample`` command that
   draws digits from the sweep's best run (the leaderboard's winner: the report tags the parent with its metric).

Options (key=value): ``tracking.uri`` (default ``sqlite:///mlflow.db``), ``experiment`` (default
``demo``), ``out`` (default ``reports/demo``); anything else is passed to the sweep as an override,
e.g. ``python -m ganbench.demo hydra/launcher=joblib hydra.launcher.n_jobs=2``.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ganbench.errors import print_error
from ganbench.report import main as report_main
from ganbench.sweep.parent import PARENT_RUN_FILE

METRIC = "gen_accuracy"  # both demo models are conditional: the share of digits drawn as asked


def parse_args(argv: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """Demo options and the overrides left for the sweep."""
    options = {"tracking.uri": "sqlite:///mlflow.db", "experiment": "demo", "out": "reports/demo"}
    overrides = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        key = "experiment" if key == "tracking.experiment" else key  # the app's spelling, too
        if sep and key in options:
            options[key] = value
        else:
            overrides.append(arg)
    return options, overrides


def shown(path: Path) -> Path:
    """``path`` relative to the working folder when it is under it: shorter commands to copy."""
    here = Path.cwd()
    return path.relative_to(here) if path.is_relative_to(here) else path


def python() -> str:
    """This interpreter (the venv's), so that a printed command works without activating the venv."""
    return shlex.quote(str(shown(Path(sys.executable).absolute())))


def ui_command(uri: str) -> str:
    """The ``mlflow ui`` command for this store, with this interpreter (the venv's) and paths relative to here."""
    if not uri.startswith("sqlite:///"):
        return f"open {uri} (the tracking server's UI)"
    db = Path(uri.removeprefix("sqlite:///")).expanduser().resolve()
    return f"{python()} -m mlflow ui --backend-store-uri sqlite:///{shown(db)}"


def sample_command(parent: str, uri: str, experiment: str) -> str:
    """The ``ganbench.sample`` command that draws digits from the best run of sweep ``parent``, as its leaderboard ranks."""
    args = ["run_id=best", f"parent={parent}", f"tracking.uri={uri}", f"tracking.experiment={experiment}"]
    return f"{python()} -m ganbench.sample {shlex.join(args)}"


def main(argv: Sequence[str] | None = None) -> int:
    started = time.perf_counter()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a bar per downloaded artifact otherwise
    options, overrides = parse_args(list(sys.argv[1:] if argv is None else argv))
    uri, experiment = options["tracking.uri"], options["experiment"]
    sweep_dir = Path("multirun") / "demo" / time.strftime("%Y-%m-%d_%H-%M-%S")
    command = [
        sys.executable, "-m", "ganbench", "-m", "sweep=demo",
        f"tracking.uri={uri}", f"tracking.experiment={experiment}", f"hydra.sweep.dir={sweep_dir}", *overrides,
    ]
    print("ganbench.demo: " + " ".join(command[1:]), flush=True)
    status = subprocess.run(command).returncode
    parent_file = sweep_dir / PARENT_RUN_FILE
    if not parent_file.is_file():
        print_error("ganbench.demo", f"the sweep did not start (exit status {status}); see the messages above")
        return status or 1
    parent = json.loads(parent_file.read_text())["run_id"]
    if status != 0:
        print_error("ganbench.demo", f"the sweep exited with status {status}; reporting what it recorded", kind="warning")

    code = report_main([f"parent={parent}", f"experiment={experiment}", f"tracking.uri={uri}", f"metric={METRIC}", f"out={options['out']}"])
    minutes, seconds = divmod(int(time.perf_counter() - started), 60)
    if code != 0:  # nothing to point at: the report said why, in one line
        print_error("ganbench.demo", f"no leaderboard was written (after {minutes} min {seconds:02d} s); see the message above")
        return code
    print()
    print(f"ganbench.demo: done in {minutes} min {seconds:02d} s")
    print(f"  leaderboard:  {(Path(options['out']) / 'leaderboard.html').resolve()}  (and leaderboard.md, leaderboard.csv)")
    print(f"  the runs:     {ui_command(uri)}   then open http://127.0.0.1:5000, experiment '{experiment}'")
    print(f"  digits:       {sample_command(parent, uri, experiment)}   (the leaderboard's best run; add label=7 out=sevens.png ...)")
    return status


if __name__ == "__main__":
    sys.exit(main())
