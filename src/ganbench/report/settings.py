"""What a report is asked for: ``ReportSettings``, built once from the ``key=value`` arguments, and ``ReportError``."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ganbench.errors import UserError

DIRECTIONS = ("auto", "min", "max")

# Every spelling the CLI accepts -> the ReportSettings field it sets. The main app's spellings
# (tracking.experiment, tracking.uri) work as well as the short ones.
KEYS = {
    "experiment": "experiment",
    "tracking.experiment": "experiment",
    "tracking.uri": "tracking_uri",
    "uri": "tracking_uri",
    "parent": "parent",
    "sweep": "parent",
    "metric": "metric",
    "direction": "direction",
    "metrics": "metrics",
    "out": "out",
    "log": "log",
}


class ReportError(UserError):
    """The report cannot be made as asked: no such store, experiment, sweep or metric."""


def check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise ReportError(f"direction={direction!r}: choose auto, min or max")


@dataclass(frozen=True)
class ReportSettings:
    """One report's settings; ``metrics=None`` means the standard evaluation metrics logged (``columns.EVAL_METRICS``), ``out=None`` the default folder."""

    experiment: str = "ganbench"
    tracking_uri: str = "sqlite:///mlflow.db"
    parent: str = "latest"  # a sweep parent's run id (read in its own experiment), latest (the newest sweep) or none (every training run)
    metric: str = "fid_clf"
    direction: str = "auto"
    metrics: tuple[str, ...] | None = None
    out: Path | None = None
    log: bool = True  # log the files to the sweep's parent run

    def __post_init__(self) -> None:
        check_direction(self.direction)

    @classmethod
    def from_args(cls, argv: Sequence[str]) -> ReportSettings:
        """``['experiment=x', 'metric=gen_accuracy', ...]`` -> settings; a later spelling of a key wins."""
        values: dict[str, str] = {}
        for arg in argv:
            key, sep, value = arg.partition("=")
            if not sep or key not in KEYS:
                raise ReportError(f"argument {arg!r} is not one of {', '.join(sorted(KEYS))} as key=value (see --help)")
            values[KEYS[key]] = value
        log = values.pop("log", "true")
        if log not in ("true", "false"):
            raise ReportError(f"log={log!r}: choose true or false")
        metrics = values.pop("metrics", None)
        out = values.pop("out", None)
        return cls(
            **values,
            metrics=None if metrics is None else tuple(m for m in metrics.split(",") if m),
            out=None if out is None else Path(out),
            log=log == "true",
        )

    def out_dir(self, parent_run_id: str | None) -> Path:
        """``out``, else ``reports/<parent run id>``, else ``reports/<experiment>`` (made safe as a folder name)."""
        if self.out is not None:
            return self.out
        return Path("reports") / (parent_run_id or re.sub(r"[^\w.-]", "_", self.experiment))
