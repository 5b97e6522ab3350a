"""Hydra callbacks: one MLflow parent run per multirun, whatever launcher runs the jobs.

Registered in ``conf/config.yaml`` (``hydra.callbacks``). In a multirun:

- ``on_multirun_start`` (the submitting process) creates the tracking store and the
  experiment before any job starts, opens the sweep's parent run (tag ``role=sweep``) and
  writes its id to ``<hydra.sweep.dir>/mlflow_parent_run.json``, where every job finds it
  (``ganbench.sweep.parent``), be it a joblib worker, a submitit process or a SLURM node;
- ``on_job_end`` (in the job's own process) writes the job's outcome to
  ``<job folder>/ganbench_job.json`` and tags its run with the job's overrides;
- ``on_multirun_end`` (the submitting process again) counts the children by status, logs the
  job list and the sweep's config to the parent run, closes it FINISHED (FAILED when every job was refused and
  nothing trained) and exits with status 2 when a job had an invalid config (FAILED and diverged jobs are
  results: they keep status 0).

A sweep that stops early (Ctrl-C, SIGTERM, a launcher error) leaves its parent run KILLED, not RUNNING. The same
sweep started while it still runs in another process is refused, and so is a store that refuses the
parent's writes: one line, exit status 2 (Hydra turns a callback's exception into a mere warning, a
``SystemExit`` it lets through).
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import re
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, NoReturn

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from mlflow.entities import Metric, RunTag
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig, OmegaConf

from ganbench.errors import EXIT_USAGE, UserError, first_line, print_error
from ganbench.files import atomic_write_json
from ganbench.sweep.parent import PARENT_RUN_FILE, parent_run_id
from ganbench.tracking import (
    Heartbeat,
    TrackingError,
    check_reachable,
    child_runs,
    experiment_id,
    git_state,
    layout,
    make_client,
    reap_dead_runs,
    search_all,
)
from ganbench.tracking.lease import new_lease, refuse_if_busy
from ganbench.tracking.runs import reopen, writing
from ganbench.train.checkpoint import config_key

log = logging.getLogger("ganbench.sweep")

JOB_FILE = "ganbench_job.json"  # one job's outcome, in the job's output folder
JOBS_ARTIFACT = layout.JOBS_ARTIFACT  # every job's outcome, logged to the parent run at the end
# What a store that cannot be written (full, read-only, gone) raises, turned into one line and exit status 2.
STORE_ERRORS = (UserError, MlflowException, OSError)


def tag_key(key: str) -> str:
    """An override key as an MLflow tag key (letters, digits, ``_ - . / space`` only): ``+sweep`` -> ``sweep``."""
    return re.sub(r"[^\w\-./ ]", "", key) or "_"


def sweep_overrides(config: DictConfig) -> dict[str, str]:
    """The sweep's overrides, key -> value: ``hydra.sweeper.params`` (from a sweep file), then the command line's."""
    merged: dict[str, str] = {}
    params = OmegaConf.select(config, "hydra.sweeper.params")
    if params:
        for key, value in OmegaConf.to_container(params, resolve=False).items():  # type: ignore[union-attr]
            merged[str(key)] = str(value)
    for override in OmegaConf.select(config, "hydra.overrides.task") or []:
        key, sep, value = str(override).partition("=")
        if sep:
            merged[key] = value
    return merged


def sweep_identity(config: DictConfig, overrides: dict[str, str]) -> str:
    """The sweep's grid and config, hashed: the same command gives the same identity, whenever it runs.

    Hydra's own settings (the sweep folder, the launcher, ...) and ``fresh`` do not change what is swept.
    """
    grid = {k: v for k, v in sorted(overrides.items()) if not k.lstrip("+~").startswith(("hydra", "fresh"))}
    body = {k: v for k, v in OmegaConf.to_container(config, resolve=False).items() if k not in ("hydra", "fresh")}  # type: ignore[union-attr]
    return config_key({"grid": grid, "config": body}, ())


def find_sweep(client: Any, experiment_id: str, identity: str) -> Any | None:
    """The newest sweep parent run with this identity in the experiment, or None."""
    found = search_all(client, experiment_id, f"tags.{layout.ROLE_TAG} = '{layout.ROLE_SWEEP}' and tags.`{layout.SWEEP_IDENTITY_TAG}` = '{identity}'")
    return max(found, key=lambda r: r.info.start_time or 0, default=None)


def stop_with(exc: BaseException) -> NoReturn:
    """Print a store's error as the app prints its errors, one line, and end the sweep with status 2."""
    print_error("ganbench", exc if isinstance(exc, UserError) else first_line(f"{type(exc).__name__}: {exc}", 2000))
    sys.exit(EXIT_USAGE)


def job_record(config: DictConfig, job_return: JobReturn) -> dict[str, Any]:
    """What became of one job: FINISHED, FAILED (error, maybe diverged) or INVALID (never started a run)."""
    value = job_return._return_value  # the property re-raises a job's exception; we only want to read it
    record: dict[str, Any] = {
        "num": int(OmegaConf.select(config, "hydra.job.num", default=-1)),
        "overrides": list(job_return.overrides or []),
        "run_id": None,
        "error": None,
        "parent_run_id": parent_run_id(Path(str(config.hydra.sweep.dir))),
    }
    if job_return.status == JobStatus.COMPLETED and isinstance(value, dict):
        record.update(status=str(value.get("status", "FINISHED")), run_id=value.get("run_id"), error=value.get("error"),
                      unwritable=bool(value.get("unwritable")))
    elif job_return.status == JobStatus.COMPLETED:
        record["status"] = "FINISHED"
    else:
        record.update(status="FAILED", error=first_line(f"{type(value).__name__}: {value}", 2000))
    return record


def _sigterm_as_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"stopped by signal {signum}")


def stop_on_sigterm() -> None:
    """Let SIGTERM (a scheduler's or ``kill``'s stop) unwind the sweep like Ctrl-C, so the atexit hook runs.

    Python's default SIGTERM ends the process on the spot, leaving the parent run RUNNING for ever.
    A handler someone else installed is left alone.
    """
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _sigterm_as_interrupt)


class MlflowParentRun(Callback):
    """One MLflow parent run per multirun; every job's run becomes its child.

    ``objective``: for Optuna sweeps, the metric of the job's run handed to the sweeper as the job's
    return value (a job without it counts as the worst value, +inf or -inf per ``direction``).
    """

    def __init__(self, objective: str | None = None, direction: str = "minimize") -> None:
        if direction not in ("minimize", "maximize"):
            raise ValueError(f"direction={direction!r}: choose minimize or maximize")
        self.objective, self.direction = objective, direction
        self.run_id: str | None = None
        self.uri: str | None = None
        self.attempt = 1  # this sweep's attempt: 2 when it continues an interrupted one, ...
        self._heartbeat: Heartbeat | None = None

    # -- in the process that starts the sweep
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            self._open_parent(config)
        except STORE_ERRORS as exc:
            self._end_failed(exc)
            stop_with(exc)
        atexit.register(self._close_if_open)
        stop_on_sigterm()

    def _open_parent(self, config: DictConfig) -> None:
        """Open the sweep's parent run (or reopen an interrupted one of the same sweep) and tell the jobs its id."""
        uri, experiment = str(config.tracking.uri), str(config.tracking.experiment)
        sweep_dir = Path(str(config.hydra.sweep.dir))  # resolves ${now:...} once; the jobs reuse the value
        check_reachable(uri)
        client = make_client(uri)  # creates a new SQLite store here, before parallel jobs could race on it
        exp_id = experiment_id(client, experiment)
        overrides = sweep_overrides(config)
        name = OmegaConf.select(config, "hydra.runtime.choices.sweep") or "grid"
        identity = sweep_identity(config, overrides)
        reap_dead_runs(client, [exp_id])  # a killed earlier attempt's parent and jobs, left RUNNING
        tags = {
            layout.ROLE_TAG: layout.ROLE_SWEEP,
            "sweep.name": name,
            "sweep.overrides": " ".join(f"{k}={v}" for k, v in overrides.items())[:5000],
            "sweep.dir": str(sweep_dir.resolve()),
            "sweep.launcher": str(OmegaConf.select(config, "hydra.launcher._target_", default="")).rsplit(".", 1)[-1],
            "sweep.sweeper": str(OmegaConf.select(config, "hydra.sweeper._target_", default="")).rsplit(".", 1)[-1],
            "command": " ".join(sys.argv)[:5000],
            layout.SWEEP_IDENTITY_TAG: identity,
            **{f"sweep.param.{tag_key(k)}": v[:5000] for k, v in overrides.items()},
        }
        tags.update(git_state())
        earlier = None if OmegaConf.select(config, "fresh", default=False) else find_sweep(client, exp_id, identity)
        self.uri = uri
        if earlier is not None:
            # The same sweep again: continue it under its parent run; finished jobs are attached, not retrained.
            refuse_if_busy(earlier, "sweep")  # still running elsewhere: its jobs would train twice, under one parent
            self.run_id, self.attempt = earlier.info.run_id, int(earlier.data.tags.get("sweep.attempt", "1")) + 1
            with writing(client, self.run_id, "the sweep's parent run"):
                reopen(client, self.run_id)
                client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in {**tags, "sweep.attempt": self.attempt}.items()])
            log.info("continuing sweep %s (attempt %d); fresh=true starts a new one", self.run_id, self.attempt)
        else:
            run_name = f"sweep-{name}-{time.strftime('%Y%m%d-%H%M%S')}"
            with writing(client, None, "the sweep's parent run"):  # leased from birth, as every run (see mlflow_run)
                self.run_id = client.create_run(exp_id, tags={**tags, **new_lease()}, run_name=run_name).info.run_id
            self.attempt = 1
        with writing(client, self.run_id, "the sweep's heartbeat"):
            self._heartbeat = Heartbeat(client, self.run_id).__enter__()
        atomic_write_json(sweep_dir / PARENT_RUN_FILE, {"run_id": self.run_id, "tracking_uri": uri, "experiment": experiment})
        log.info("sweep parent run %s in experiment %r of %s", self.run_id, experiment, uri)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.run_id is None:
            return
        try:
            summary, jobs = self._close_parent(config)
        except STORE_ERRORS as exc:
            self._end_failed(exc)
            stop_with(exc)
        parent, self.run_id = self.run_id, None
        print(f"ganbench: sweep finished: {summary}; parent run {parent}", file=sys.stderr)
        print(
            f"ganbench: leaderboard: python -m ganbench.report parent={parent} "
            f"experiment={config.tracking.experiment} tracking.uri={config.tracking.uri}",
            file=sys.stderr,
        )
        invalid = [j for j in jobs if j["status"] == "INVALID"]
        # A job stopped by a store or disk that refuses writes is FAILED, yet no result: the user fixes the store.
        unwritable = [j for j in jobs if j.get("unwritable")]
        if invalid or unwritable:
            by_error: dict[tuple[str, str], list[int]] = {}
            for job in invalid:
                by_error.setdefault(("did not run", str(job["error"])), []).append(job["num"])
            for job in unwritable:
                by_error.setdefault(("failed", str(job["error"])), []).append(job["num"])
            for (what, error), nums in by_error.items():
                first = first_line(error, 2000) if error else "invalid config"
                print_error("ganbench", f"job(s) #{', #'.join(map(str, nums))} {what}: {first}")
            sys.exit(EXIT_USAGE)

    def _close_parent(self, config: DictConfig) -> tuple[str, list[dict[str, Any]]]:
        """Log the jobs' outcomes and the sweep's config to the parent run and end it FINISHED; the summary and the
        jobs' records."""
        assert self.run_id is not None
        client = make_client(str(config.tracking.uri))
        sweep_dir = Path(str(config.hydra.sweep.dir))
        # Only this sweep's jobs: a reused sweep folder may still hold an earlier sweep's.
        jobs = sorted(
            (job for p in sweep_dir.rglob(JOB_FILE) if (job := json.loads(p.read_text())).get("parent_run_id") == self.run_id),
            key=lambda j: j["num"],
        )
        children = child_runs(client, self.run_id)
        counts = {status: sum(r.info.status == status for r in children) for status in ("FINISHED", "FAILED", "KILLED", "RUNNING")}
        counts["diverged"] = sum(layout.DIVERGED_TAG in r.data.tags for r in children)
        invalid = [j for j in jobs if j["status"] == "INVALID"]
        now = int(time.time() * 1000)
        metrics = {"jobs": len(jobs), "jobs_invalid": len(invalid), **{f"children_{k.lower()}": v for k, v in counts.items()}}
        summary = (
            f"{len(jobs)} jobs: {counts['FINISHED']} finished, {counts['FAILED']} failed ({counts['diverged']} diverged), "
            f"{counts['KILLED']} killed, {len(invalid)} invalid"
        )
        tags = {layout.SWEEP_SUMMARY_TAG: summary}
        if invalid:
            tags[layout.ERROR_TAG] = f"{len(invalid)} job(s) had an invalid config: " + "; ".join(
                f"#{j['num']} {' '.join(j['overrides'])}: {j['error']}" for j in invalid
            )[:4900]
        with writing(client, self.run_id, "the sweep's summary"):
            client.log_batch(
                self.run_id,
                # At the attempt's number as step: a re-run sweep adds its counts, never a second value at one step.
                metrics=[Metric(k, float(v), now, self.attempt) for k, v in metrics.items()],
                tags=[RunTag(k, v) for k, v in tags.items()],
            )
        with writing(client, self.run_id, f"the sweep's job list {JOBS_ARTIFACT}"):
            client.log_text(self.run_id, json.dumps(jobs, indent=1, sort_keys=True), JOBS_ARTIFACT)
        for extra in ("multirun.yaml", "optimization_results.yaml"):  # the sweep's config; Optuna's best trial
            if (sweep_dir / extra).is_file():
                with writing(client, self.run_id, f"the sweep's {extra}"):
                    client.log_artifact(self.run_id, str(sweep_dir / extra), layout.SWEEP_ARTIFACT_DIR)
        self._stop_heartbeat()
        # A sweep whose every job was refused trained nothing: FAILED, so that nobody reads it as an empty result.
        status = "FAILED" if jobs and len(invalid) == len(jobs) and not children else "FINISHED"
        with writing(client, self.run_id, "the sweep's end"):
            client.set_terminated(self.run_id, status)
        return summary, jobs

    def __getstate__(self) -> dict[str, Any]:
        # Launchers pickle the callbacks into every job; the heartbeat (a thread) stays with the sweep's process.
        return {**self.__dict__, "_heartbeat": None}

    def _stop_heartbeat(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.__exit__(None, None, None)
            self._heartbeat = None

    def _end_failed(self, exc: BaseException) -> None:
        """The parent run FAILED with the store's error as its reason, when the store still takes that much; when it
        does not, the stopped heartbeat lets its lease run out, and the next ganbench command marks it KILLED."""
        run_id, self.run_id = self.run_id, None  # the atexit hook would give it a wrong reason
        self._stop_heartbeat()
        if run_id is None or self.uri is None:
            return
        try:
            client = make_client(self.uri)
            client.set_tag(run_id, layout.ERROR_TAG, first_line(f"{type(exc).__name__}: {exc}", 5000))
            client.set_terminated(run_id, "FAILED")
        except Exception as error:  # exiting anyway, with the first error: this one is the same store's
            log.debug("could not mark the sweep's parent run %s FAILED: %s", run_id, error)

    def _close_if_open(self) -> None:
        """At exit of a sweep that never reached its end: the parent run is KILLED, not left RUNNING."""
        if self.run_id is None or self.uri is None:
            return
        try:
            self._stop_heartbeat()
            client = make_client(self.uri)
            client.set_tag(self.run_id, layout.KILLED_TAG, "the sweep stopped before all its jobs returned")
            client.set_terminated(self.run_id, "KILLED")
        except Exception as exc:  # exiting anyway: say so, never mask the real error
            print(f"ganbench: could not close the sweep's parent run {self.run_id}: {exc}", file=sys.stderr)
        self.run_id = None

    # -- in each job's process
    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if OmegaConf.select(config, "hydra.mode") != RunMode.MULTIRUN:
            return
        record = job_record(config, job_return)
        atomic_write_json(Path(str(config.hydra.runtime.output_dir)) / JOB_FILE, record)
        client = None
        if record["run_id"]:
            try:
                client = make_client(str(config.tracking.uri))
                # The job's own choices, e.g. optim.lr=1e-4: the report tells configurations apart by them.
                client.set_tag(record["run_id"], layout.OVERRIDES_TAG, " ".join(record["overrides"])[:5000])
            except Exception as exc:
                log.warning("could not tag run %s with its overrides: %s", record["run_id"], exc)
        if self.objective:
            job_return.return_value = self.objective_value(client, record)

    def objective_value(self, client: Any, record: dict[str, Any]) -> float:
        """The job's ``objective`` metric for the sweeper; a failed job or a missing metric is the worst value."""
        worst = math.inf if self.direction == "minimize" else -math.inf
        if record["status"] != "FINISHED" or client is None:
            return worst
        value = client.get_run(record["run_id"]).data.metrics.get(self.objective)
        if value is None or not math.isfinite(value):
            log.warning("run %s has no finite %s; the sweeper gets %s", record["run_id"], self.objective, worst)
            return worst
        return float(value)
