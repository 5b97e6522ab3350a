"""Reading runs back from MLflow: ``RunRecord``, the sweep's parent, its training runs and jobs, the real-data
reference runs, the last sample grids and the metric histories the figures draw."""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException

from ganbench.report.settings import ReportError, ReportSettings
from ganbench.tracking import reap_dead_runs, search_all
from ganbench.tracking.lease import dead_reason
from ganbench.tracking.layout import (
    DIVERGED_TAG,
    ERROR_TAG,
    JOB_INVALID,
    JOBS_ARTIFACT,
    KILLED_TAG,
    MEASURED_PREFIX,
    NOT_TRAINING,
    OVERRIDES_TAG,
    PARENT_TAG,
    REFERENCE_REAL,
    REFERENCE_TAG,
    ROLE_SWEEP,
    ROLE_TAG,
    RUN_NAME_TAG,
    SAMPLE_GRID_PATTERN,
    SAMPLES_DIR,
    SEED_TAG,
)

REFERENCE_RUN_ID_TAG = f"{MEASURED_PREFIX}reference_run_id"  # the reference run an evaluation compared with
# On a sweep's parent run: the metric its logged leaderboard ranks by, and min or max (``ganbench.sample run_id=best``
# ranks the same way).
RANKED_BY_TAG = "report.metric"
RANKED_DIRECTION_TAG = "report.direction"


def natural_key(text: str) -> tuple[Any, ...]:
    """Sort key that orders ``seed 2`` before ``seed 10``."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text))


def parse_overrides(text: str) -> dict[str, str]:
    """``'model=dcgan optim.lr=1e-4 sweep=smoke'`` -> ``{'model': 'dcgan', 'optim.lr': '1e-4', 'sweep': 'smoke'}``."""
    out = {}
    for item in re.split(r"(?<!\\) ", text.strip()):
        key, sep, value = item.partition("=")
        if sep:
            out[key.lstrip("+~")] = value.replace("\\", "")
    return out


@dataclass
class RunRecord:
    """What the report reads from one MLflow run."""

    run_id: str
    name: str
    status: str
    start_time: int
    tags: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]

    @property
    def seed(self) -> str:
        return self.tags.get(SEED_TAG, self.params.get(SEED_TAG, "?"))

    @property
    def diverged(self) -> bool:
        return DIVERGED_TAG in self.tags

    @property
    def error(self) -> str:
        return self.tags.get(DIVERGED_TAG) or self.tags.get(ERROR_TAG) or self.tags.get(KILLED_TAG) or ""

    @property
    def overrides(self) -> dict[str, str]:
        """The sweep job's own overrides (tag ``overrides``), parsed."""
        return parse_overrides(self.tags.get(OVERRIDES_TAG, ""))

    @classmethod
    def of(cls, run: Any) -> RunRecord:
        return cls(
            run_id=run.info.run_id,
            name=run.info.run_name or run.data.tags.get(RUN_NAME_TAG, run.info.run_id),
            status=run.info.status,
            start_time=int(run.info.start_time or 0),
            tags=dict(run.data.tags),
            params=dict(run.data.params),
            metrics=dict(run.data.metrics),
        )


def ranked_by(parent: RunRecord | None) -> tuple[str, str] | None:
    """(metric, min|max) the sweep's logged leaderboard ranked by, from its parent run's tags; None before one was logged."""
    if parent is None or RANKED_BY_TAG not in parent.tags:
        return None
    return parent.tags[RANKED_BY_TAG], parent.tags.get(RANKED_DIRECTION_TAG, "auto")


def settled(record: RunRecord, now: float) -> RunRecord:
    """The run as the reaper leaves it: RUNNING with a dead lease counts as KILLED, also where the store refused to
    mark it (a read-only store: ``reap_dead_runs`` logs the failed write and goes on)."""
    reason = dead_reason(record.tags, now) if record.status == "RUNNING" else None
    if reason is None:
        return record
    return replace(record, status="KILLED", tags={**record.tags, KILLED_TAG: f"found RUNNING but {reason}"})


@dataclass
class SweepRuns:
    """What one report ranks: the training runs of a sweep (or of the whole experiment) and what goes with them."""

    experiment_id: str
    parent: RunRecord | None
    runs: list[RunRecord]
    references: list[RunRecord]
    invalid_jobs: list[dict[str, Any]]
    experiment: str = ""  # its name: a parent run id's own experiment, whatever experiment= said


def get_parent_run(client: Any, run_id: str) -> Any:
    try:
        return client.get_run(run_id)
    except MlflowException:
        raise ReportError(f"no run {run_id!r} in this store; check parent= and tracking.uri=") from None


def find_parent(client: Any, experiment_id: str, spec: str) -> RunRecord | None:
    """``latest``: the newest sweep parent run (tag role=sweep); ``none``: no parent; else a run id."""
    if spec == "none":
        return None
    if spec == "latest":
        sweeps = search_all(client, experiment_id, f"tags.{ROLE_TAG} = '{ROLE_SWEEP}'")
        if not sweeps:
            raise ReportError("this experiment has no sweep parent run (tag role=sweep); pass parent=<run id>, or parent=none to rank every run")
        newest_first = sorted(sweeps, key=lambda r: (r.info.start_time or 0, r.info.run_id), reverse=True)
        # A sweep whose every job was refused (a bad value) has no run: "latest" means the newest that trained something.
        with_runs = (r for r in newest_first
                     if client.search_runs([experiment_id], f"tags.{PARENT_TAG} = '{r.info.run_id}'", max_results=1))
        return RunRecord.of(next(with_runs, newest_first[0]))
    return RunRecord.of(get_parent_run(client, spec))


def find_experiment(client: Any, settings: ReportSettings) -> Any:
    """The experiment to read: a parent run id's own (a sweep may log to any experiment), else ``experiment=``."""
    if settings.parent not in ("latest", "none"):
        return client.get_experiment(get_parent_run(client, settings.parent).info.experiment_id)
    exp = client.get_experiment_by_name(settings.experiment)
    if exp is None:
        raise ReportError(f"no experiment {settings.experiment!r} in {client.tracking_uri}; check experiment= and tracking.uri=")
    return exp


def read_runs(client: Any, settings: ReportSettings) -> SweepRuns:
    """The training runs the settings ask for (one sweep, or every run of the experiment), with their references."""
    exp = find_experiment(client, settings)
    now = time.time()
    reap_dead_runs(client, [exp.experiment_id], now)  # a run whose process is gone counts as killed, not running
    parent = find_parent(client, exp.experiment_id, settings.parent)
    if parent is not None:
        parent = settled(parent, now)
        found = search_all(client, exp.experiment_id, f"tags.{PARENT_TAG} = '{parent.run_id}'")
    else:
        found = search_all(client, exp.experiment_id)
    runs = [settled(RunRecord.of(r), now) for r in found if r.data.tags.get(ROLE_TAG) not in NOT_TRAINING]
    if not runs:
        where = f"sweep {parent.run_id}" if parent else f"experiment {exp.name!r}"
        raise ReportError(f"{where} has no training runs yet")
    invalid = invalid_jobs(client, parent.run_id) if parent is not None else []
    return SweepRuns(exp.experiment_id, parent, runs, reference_runs(client, exp.experiment_id, runs), invalid, exp.name)


def invalid_jobs(client: Any, parent_run_id: str) -> list[dict[str, Any]]:
    """The sweep's jobs that never started a run (invalid config), from its ``sweep/jobs.json``."""
    try:
        with tempfile.TemporaryDirectory() as tmp:
            jobs = json.loads(Path(client.download_artifacts(parent_run_id, JOBS_ARTIFACT, tmp)).read_text())
        return [j for j in jobs if j.get("status") == JOB_INVALID]
    except Exception:  # a sweep still running, or one made before ganbench logged its jobs
        return []


def reference_runs(client: Any, experiment_id: str, runs: Sequence[RunRecord]) -> list[RunRecord]:
    """The real-data reference run per dataset: the one the runs name (``measured.reference_run_id``), else the newest."""
    datasets = sorted({r.tags.get("dataset", "") for r in runs} - {""})
    named: dict[str, int] = {}
    for r in runs:
        rid = r.tags.get(REFERENCE_RUN_ID_TAG)
        if rid:
            named[rid] = named.get(rid, 0) + 1
    chosen: dict[str, RunRecord] = {}
    for rid in sorted(named, key=lambda k: (-named[k], k)):
        try:
            ref = RunRecord.of(client.get_run(rid))
        except Exception:
            continue
        chosen.setdefault(ref.tags.get("dataset", ""), ref)
    missing = [d for d in datasets if d not in chosen]
    if missing:
        found = search_all(client, experiment_id, f"tags.{REFERENCE_TAG} = '{REFERENCE_REAL}'")
        for run in sorted(found, key=lambda r: (-(r.info.start_time or 0), r.info.run_id)):
            ref = RunRecord.of(run)
            if ref.tags.get("dataset") in missing and ref.status == "FINISHED":
                chosen.setdefault(ref.tags["dataset"], ref)
    return [chosen[d] for d in datasets if d in chosen]


def last_sample_grid(client: Any, run_id: str) -> bytes | None:
    """The run's last ``samples/epoch_NNN.png`` (the final generator's grid), or None."""
    try:
        found = [(SAMPLE_GRID_PATTERN.fullmatch(a.path), a.path) for a in client.list_artifacts(run_id, SAMPLES_DIR)]
    except Exception:
        return None
    grids = sorted((int(match.group(1)), path) for match, path in found if match)
    if not grids:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        return Path(client.download_artifacts(run_id, grids[-1][1], tmp)).read_bytes()


def sample_grids(client: Any, run_ids: Iterable[str]) -> dict[str, bytes]:
    """Run id -> its last sample grid, for the runs that logged one."""
    grids = {}
    for run_id in run_ids:
        png = last_sample_grid(client, run_id)
        if png is not None:
            grids[run_id] = png
    return grids


def metric_histories(client: Any, runs: Iterable[RunRecord], keys: Sequence[str]) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """Run id -> metric -> ``[(step, value)]`` for the FINISHED runs, each of ``keys`` the run logged."""
    return {
        run.run_id: {key: sorted((m.step, m.value) for m in client.get_metric_history(run.run_id, key)) for key in keys if key in run.metrics}
        for run in runs
        if run.status == "FINISHED"
    }
