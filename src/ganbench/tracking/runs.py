"""One MLflow run as ganbench writes it: the buffered per-step logger, the run's life cycle, its tags."""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.exceptions import MlflowException
from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from ganbench.errors import first_line
from ganbench.files import write_error
from ganbench.tracking import layout
from ganbench.tracking.lease import Heartbeat, new_lease
from ganbench.tracking.store import TrackingError, experiment_id

log = logging.getLogger(__name__)


def _not_a_db_error(record: logging.LogRecord) -> bool:
    return record.levelno < logging.ERROR


# MLflow logs a full traceback for every SQL error and then raises it again as an MlflowException, which
# ``writing`` turns into one line (or which propagates whole): the logged copy is only noise.
logging.getLogger("mlflow.store.db.utils").addFilter(_not_a_db_error)


def flatten(cfg: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config -> {'train.batch_size': '128', ...}, as MLflow params."""
    flat: dict[str, str] = {}
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            if value:
                flat.update(flatten(value, name + "."))
            else:
                flat[name] = "{}"
        else:
            flat[name] = str(value)
    return flat


PACKAGE_DIR = Path(__file__).resolve().parent
CODE_PATHS = (":/src", ":/conf", ":/sweeps")  # what a run's behaviour depends on in a checkout (top-level pathspecs)


def _git(where: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=where, capture_output=True, text=True, timeout=5, check=True).stdout


def git_commit(where: Path | None = None) -> str | None:
    """The project's git commit when ganbench runs from a checkout (``where``, default its package), else None."""
    try:
        return _git(where or PACKAGE_DIR, "rev-parse", "HEAD").strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def git_state(where: Path | None = None) -> dict[str, str]:
    """Tags saying which code ran: the checkout's commit and whether its code had uncommitted changes ({} outside git).

    A commit alone does not say what ran when src/, conf/ or sweeps/ were edited since: ``git.dirty`` does, and
    ``uncommitted_diff`` is the change itself, logged beside the run.
    """
    commit = git_commit(where)
    if commit is None:
        return {}
    try:
        dirty = bool(_git(where or PACKAGE_DIR, "status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS).strip())
    except (OSError, subprocess.SubprocessError):
        return {layout.GIT_COMMIT_TAG: commit}
    return {layout.GIT_COMMIT_TAG: commit, layout.GIT_DIRTY_TAG: str(dirty).lower()}


def uncommitted_diff(where: Path | None = None) -> str:
    """``git diff HEAD`` of the code paths: what a dirty checkout ran beyond its commit ("" when clean or not git)."""
    try:
        return _git(where or PACKAGE_DIR, "diff", "HEAD", "--", *CODE_PATHS)
    except (OSError, subprocess.SubprocessError):
        return ""


STORE_FULL_OR_LOCKED = ("readonly database", "disk is full", "disk I/O error", "unable to open database")


@contextmanager
def writing(client: MlflowClient, run_id: str | None, what: str) -> Iterator[None]:
    """Turn a store or artifact store that cannot be written (full, read-only) into one clear line."""
    try:
        yield
    except OSError as exc:
        try:
            where = client.get_run(run_id).info.artifact_uri if run_id else "the artifact store"
        except Exception:
            where = "the run's artifact store"
        raise write_error(what, where, exc, "free some space there or use a tracking.uri whose store has room") from None
    except MlflowException as exc:
        if any(marker in str(exc) for marker in STORE_FULL_OR_LOCKED):
            raise TrackingError(
                f"could not write {what} to the MLflow store {client.tracking_uri} ({first_line(exc, 120)}); "
                "free some space or fix its permissions, or use another tracking.uri"
            ) from None
        raise


class RunLogger:
    """Logs to one MLflow run; per-step metrics are buffered and written in batches.

    Writing every step's metrics as its own request would make the store, not the
    GAN, the bottleneck; batching keeps every step while writing rarely.
    """

    def __init__(self, client: MlflowClient, run_id: str, flush_every: int = 100):
        self.client, self.run_id, self.flush_every = client, run_id, max(1, flush_every)
        self._buffer: list[Metric] = []
        self._steps_buffered = 0
        self._logged_through: dict[str, int] = {}  # after a resume: the last step the store already has per key

    def log_params(self, params: Mapping[str, Any]) -> None:
        with writing(self.client, self.run_id, "the run's params"):
            self.client.log_batch(self.run_id, params=[Param(k, str(v)[:6000]) for k, v in params.items()])

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        with writing(self.client, self.run_id, "the run's tags"):
            self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def skip_logged_steps(self) -> None:
        """After a resume: drop metrics for steps the store already holds, so no step is logged twice."""
        run = self.client.get_run(self.run_id)
        for key in run.data.metrics:
            history = self.client.get_metric_history(self.run_id, key)
            self._logged_through[key] = max((m.step for m in history), default=-1)

    def log_metrics(self, values: Mapping[str, float], step: int) -> None:
        """Buffer one step's metrics; they reach the store every ``flush_every`` steps."""
        now = int(time.time() * 1000)
        skip = self._logged_through
        self._buffer.extend(Metric(k, v, now, step) for k, v in values.items() if step > skip.get(k, -1))
        self._steps_buffered += 1
        if self._steps_buffered >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        metrics = [Metric(m.key, float(m.value), m.timestamp, m.step) for m in self._buffer]
        self._buffer, self._steps_buffered = [], 0
        with writing(self.client, self.run_id, "the run's metrics"):
            self.client.log_batch(self.run_id, metrics=metrics)

    def log_artifact(self, path: str | os.PathLike, artifact_path: str | None = None) -> None:
        with writing(self.client, self.run_id, f"artifact {artifact_path or ''}/{Path(path).name}".replace(" /", " ")):
            self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_text(self, text: str, artifact_file: str) -> None:
        with writing(self.client, self.run_id, f"artifact {artifact_file}"):
            self.client.log_text(self.run_id, text, artifact_file)

    def log_figure(self, figure: Any, artifact_file: str) -> None:
        with writing(self.client, self.run_id, f"artifact {artifact_file}"):
            self.client.log_figure(self.run_id, figure, artifact_file)

    def log_image_file(self, image: Any, artifact_file: str) -> None:
        """Save a PIL image as ``artifact_file`` (e.g. 'samples/epoch_001.png')."""
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / Path(artifact_file).name
            image.save(path)
            parent = str(Path(artifact_file).parent)
            self.log_artifact(path, None if parent == "." else parent)


def grid_tags(cfg: DictConfig, stabilize_label: str) -> dict[str, str]:
    """The grid's choices for this run, as tags (model, loss, stabilize, dataset, noise, seed).

    ``dataset`` names the preprocessing too when it is not the default (hoda+hoda_reader); a run that also
    trains on the held-out split (dataset.train_with_test) is tagged data.heldout_seen=true.
    """
    # Imported here: ganbench.data loads torch, which the report and its CLI (readers of this package) do without.
    from ganbench.data import dataset_label

    tags = {layout.PRESET_TAG: str(cfg.preset)} if cfg.get("preset") else {}
    if cfg.dataset.get("train_with_test"):
        tags[layout.HELDOUT_SEEN_TAG] = "true"
    return tags | {
        "model": str(cfg.model.name),
        "loss": str(cfg.loss.name),
        "stabilize": stabilize_label,
        "dataset": dataset_label(cfg.dataset),
        "noise": str(cfg.noise.name),
        "seed": str(cfg.seed),
    }


@contextmanager
def system_metrics(client: MlflowClient, run_id: str, every_s: float | None) -> Iterator[None]:
    """MLflow's system metrics (CPU, memory, GPU) sampled every ``every_s`` seconds in a thread; off for 0/None."""
    if not every_s:
        yield
        return
    monitor = SystemMetricsMonitor(run_id, sampling_interval=float(every_s), resume_logging=True, tracking_uri=client.tracking_uri)
    monitor.start()
    try:
        yield
    finally:
        monitor.finish()


def reopen(client: MlflowClient, run_id: str) -> None:
    """Mark an interrupted run RUNNING again; why it stopped moves to ``<tag>.previous``, as it no longer holds."""
    tags = client.get_run(run_id).data.tags
    for key in (layout.KILLED_TAG, layout.ERROR_TAG):
        if key in tags:
            client.set_tag(run_id, f"{key}.previous", tags[key])
            client.delete_tag(run_id, key)
    # A fresh lease before the status: with the old, expired one, another command could reap the run at once.
    client.log_batch(run_id, tags=[RunTag(k, v) for k, v in new_lease().items()])
    client.update_run(run_id, status=RunStatus.to_string(RunStatus.RUNNING))


@contextmanager
def heartbeat(client: MlflowClient, run_id: str) -> Iterator[None]:
    """Keep the run's lease fresh while the block runs; a store that refuses the first beat is one clear line."""
    beating = Heartbeat(client, run_id)
    with writing(client, run_id, "the run's heartbeat"):
        beating.__enter__()
    try:
        yield
    finally:
        beating.__exit__(None, None, None)


@contextmanager
def mlflow_run(
    client: MlflowClient,
    experiment: str,
    run_name: str,
    tags: Mapping[str, str],
    parent_run_id: str | None = None,
    run_id: str | None = None,
    flush_every: int = 100,
    system_metrics_every: float | None = None,
) -> Iterator[RunLogger]:
    """Create a run (or reopen ``run_id`` to resume it) and end it FINISHED, FAILED (error as a tag) or KILLED."""
    if run_id is not None:
        with writing(client, run_id, "the resumed run's status"):
            reopen(client, run_id)
    else:
        # Leased from birth: a run whose first heartbeat fails (a full store) is still reaped, not RUNNING for ever.
        all_tags = {layout.RUN_NAME_TAG: run_name, **tags, **new_lease()}
        if parent_run_id:
            all_tags[layout.PARENT_TAG] = parent_run_id
        code = git_state()
        all_tags.update(code)
        with writing(client, None, "a new run"):
            run_id = client.create_run(experiment_id(client, experiment), tags=all_tags, run_name=run_name).info.run_id
            if code.get(layout.GIT_DIRTY_TAG) == "true":
                client.log_text(run_id, uncommitted_diff(), layout.UNCOMMITTED_DIFF_ARTIFACT)
    logger = RunLogger(client, run_id, flush_every)
    try:
        with heartbeat(client, run_id), system_metrics(client, run_id, system_metrics_every):
            yield logger
    except KeyboardInterrupt:
        _end(logger, RunStatus.KILLED, "interrupted")
        raise
    except BaseException as exc:
        reason = first_line(f"{type(exc).__name__}: {exc}", 5000)
        _end(logger, RunStatus.FAILED, reason, diverged=getattr(exc, "diverged", False))
        if getattr(exc, "run_id", None) is None:
            exc.run_id = run_id  # type: ignore[attr-defined]  # a sweep job reports the FAILED run it leaves
        raise
    else:
        logger.flush()
        client.set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED))


def _end(logger: RunLogger, status: int, reason: str, diverged: bool = False) -> None:
    """End the run with ``status`` and its reason; a store that cannot take it (full, read-only) does not mask
    the error being raised: the run's lease then runs out and the next ganbench command marks it KILLED."""
    tags = {layout.ERROR_TAG: reason} if status == RunStatus.FAILED else {layout.KILLED_TAG: reason}
    if diverged:
        tags[layout.DIVERGED_TAG] = reason
    try:
        try:
            logger.flush()
            logger.set_tags(tags)
        finally:
            logger.client.set_terminated(logger.run_id, RunStatus.to_string(status))
    except Exception as exc:
        log.warning("could not mark run %s %s in the store: %s", logger.run_id, RunStatus.to_string(status), first_line(exc))


def to_container(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as plain dicts and lists."""
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


