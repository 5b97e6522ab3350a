"""``python -m ganbench.report [key=value ...]``: write the leaderboard of a sweep and log it to its parent run."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mlflow.entities import RunTag
from mlflow.exceptions import MlflowException

from ganbench.errors import EXIT_USAGE, UserError, first_line, print_error
from ganbench.report.leaderboard import Leaderboard, load
from ganbench.report.records import RANKED_BY_TAG, RANKED_DIRECTION_TAG
from ganbench.report.render import write
from ganbench.report.settings import ReportError, ReportSettings
from ganbench.report.text import verdict
from ganbench.tracking import check_reachable, make_client, sqlite_path
from ganbench.tracking.layout import REPORT_ARTIFACT_DIR

PROG = "ganbench.report"

USAGE = """usage: python -m ganbench.report [key=value ...]
  experiment=NAME        MLflow experiment (default: ganbench; tracking.experiment=NAME also works; parent=<run id> reads its own)
  tracking.uri=URI       tracking store (default: sqlite:///mlflow.db; uri=URI also works)
  parent=ID|latest|none  the sweep's parent run; latest: the newest sweep (default); none: every run of the experiment
  metric=NAME            rank by this metric (default: fid_clf; lower is better, gen_accuracy etc. higher)
  direction=auto|min|max whether lower (min) or higher (max) ranks first (default: auto, by the metric's name)
  metrics=A,B,...        metric columns (default: the standard evaluation metrics logged, else d_loss,g_loss)
  out=DIR                output folder (default: reports/<sweep run id> or reports/<experiment>)
  log=true|false         log the report to the sweep's parent run, tagged with the metric it ranks by (default: true)"""


def log_report(client: Any, board: Leaderboard, files: dict[str, Path]) -> None:
    """Log the files to the sweep's parent run and tag it with the ranking, which ``ganbench.sample run_id=best`` follows."""
    assert board.parent is not None
    for path in files.values():
        client.log_artifact(board.parent.run_id, str(path), REPORT_ARTIFACT_DIR)
    direction = "min" if board.lower_is_better else "max"
    client.log_batch(board.parent.run_id, tags=[RunTag(RANKED_BY_TAG, board.metric), RunTag(RANKED_DIRECTION_TAG, direction)])


def main(argv: Sequence[str] | None = None, echo: Callable[[str], None] = print) -> int:
    """Write the leaderboard and log it to the sweep's parent run; 0 when written, 2 on a usage or store error."""
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one bar per sample grid otherwise
    if any(a in ("-h", "--help") for a in argv):
        echo(USAGE)
        return 0
    try:
        settings = ReportSettings.from_args(argv)
        check_reachable(settings.tracking_uri)
        db = sqlite_path(settings.tracking_uri)
        if db is not None and not db.exists():  # MLflow would create an empty store instead
            raise ReportError(f"no MLflow store at {settings.tracking_uri}; run a sweep first or pass tracking.uri=")
        client = make_client(settings.tracking_uri, reader=True)
        loaded = load(client, settings)
        board = loaded.board
        files = write(loaded, settings.out_dir(board.parent.run_id if board.parent else None))
    except UserError as exc:  # ReportError, TrackingError: one line each, no traceback
        print_error(PROG, exc)
        return EXIT_USAGE
    logged = board.parent is not None and settings.log
    if logged:
        try:
            log_report(client, board, files)
        except (MlflowException, OSError) as exc:  # a read-only store still gets its report, written here
            board.warnings.append(f"the report was not logged to the sweep's parent run {board.parent.run_id} "
                                  f"({first_line(exc)}); pass log=false for a read-only store")
            logged = False
    for warning in board.warnings:
        print_error(PROG, warning, kind="warning")
    echo(verdict(board))
    echo(f"report: {files['html'].resolve()} (also leaderboard.md, leaderboard.csv)")
    if logged:
        echo(f"logged to the sweep's parent run {board.parent.run_id} under {REPORT_ARTIFACT_DIR}/")
    return 0
