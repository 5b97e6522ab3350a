"""Leaderboard reports: configurations ranked over seeds, read back from MLflow.

``python -m ganbench.report [parent=<run id>|latest|none] [experiment=ganbench]
[tracking.uri=sqlite:///mlflow.db] [metric=fid_clf] [out=reports/<sweep>]`` writes
``leaderboard.md``, ``leaderboard.csv`` and a self-contained ``leaderboard.html`` and logs
them to the sweep's parent run. Rows are configurations (model, loss, stabilize, dataset,
noise, plus any other key the sweep varied), aggregated over seeds: mean and t-based 95%
confidence interval of every metric, the seed count, failed/diverged/running counts, the rank
by the chosen metric, and Welch's t-test of each row against the best one (Holm-adjusted).
The same runs always give the same files: no clock, no random state, fixed orderings.

The modules, each one job: ``settings`` (``ReportSettings``, ``ReportError``), ``stats`` (summaries,
intervals, Welch, Holm), ``records`` (reading runs from MLflow), ``columns`` (which metrics, their
direction, what each was measured on), ``leaderboard`` (``Row``, ``Leaderboard``, ``build``, ``load``),
``text`` (formats, verdict, table), ``figures`` (matplotlib), ``render`` (Markdown, CSV, HTML, ``write``)
and ``cli`` (``main``).
"""

from ganbench.report.cli import main
from ganbench.report.columns import higher_is_better
from ganbench.report.leaderboard import Leaderboard, Loaded, Row, build, load
from ganbench.report.records import RunRecord
from ganbench.report.render import to_csv, to_html, to_markdown, write
from ganbench.report.settings import ReportError, ReportSettings
from ganbench.report.stats import Stat, holm, summarize, welch_p
from ganbench.report.text import config_label, verdict

__all__ = [
    "Leaderboard",
    "Loaded",
    "ReportError",
    "ReportSettings",
    "Row",
    "RunRecord",
    "Stat",
    "build",
    "config_label",
    "higher_is_better",
    "holm",
    "load",
    "main",
    "summarize",
    "to_csv",
    "to_html",
    "to_markdown",
    "verdict",
    "welch_p",
    "write",
]
