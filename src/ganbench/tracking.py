"""MLflow as the record: stores, experiments, runs and a buffered per-step metric logger."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

GRID_AXES = ("model", "loss", "stabilize", "dataset", "noise")


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


def git_commit() -> str | None:
    """The project's git commit when ganbench runs from a checkout, else None."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5, check=True
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def make_client(uri: str) -> MlflowClient:
    """A client for ``uri``; a local SQLite file's folder is created on demand."""
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    return MlflowClient(tracking_uri=uri)


def artifact_location(uri: str, experiment: str) -> str | None:
    """Where a new experiment's artifacts go: beside a local SQLite store, else the server's default.

    MLflow's own default is ``./mlruns`` under whatever folder the process runs in,
    which scatters artifacts; keeping them next to the database keeps a store whole.
    """
    if not uri.startswith("sqlite:///"):
        return None
    db = Path(uri.removeprefix("sqlite:///")).expanduser().resolve()
    slug = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in experiment)
    return (db.parent / "mlartifacts" / slug).as_uri()


def experiment_id(client: MlflowClient, name: str) -> str:
    """The id of experiment ``name``, created when missing (safe when several processes race to create it)."""
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location(client.tracking_uri, name))
    except MlflowException:
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


class RunLogger:
    """Logs to one MLflow run; per-step metrics are buffered and written in batches.

    Writing every step's metrics as its own request would make the store, not the
    GAN, the bottleneck; batching keeps every step while writing rarely.
    """

    def __init__(self, client: MlflowClient, run_id: str, flush_every: int = 100):
        self.client, self.run_id, self.flush_every = client, run_id, max(1, flush_every)
        self._buffer: list[Metric] = []
        self._steps_buffered = 0

    def log_params(self, params: Mapping[str, Any]) -> None:
        self.client.log_batch(self.run_id, params=[Param(k, str(v)[:6000]) for k, v in params.items()])

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_metrics(self, values: Mapping[str, float], step: int) -> None:
        """Buffer one step's metrics (tensors are read only at flush time, to avoid device syncs per step)."""
        now = int(time.time() * 1000)
        self._buffer.extend(Metric(k, v, now, step) for k, v in values.items())
        self._steps_buffered += 1
        if self._steps_buffered >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        metrics = [Metric(m.key, float(m.value), m.timestamp, m.step) for m in self._buffer]
        self._buffer, self._steps_buffered = [], 0
        self.client.log_batch(self.run_id, metrics=metrics)

    def log_artifact(self, path: str | os.PathLike, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, text, artifact_file)

    def log_figure(self, figure: Any, artifact_file: str) -> None:
        self.client.log_figure(self.run_id, figure, artifact_file)

    def log_image_file(self, image: Any, artifact_file: str) -> None:
        """Save a PIL image as ``artifact_file`` (e.g. 'samples/epoch_001.png')."""
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / Path(artifact_file).name
            image.save(path)
            parent = str(Path(artifact_file).parent)
            self.log_artifact(path, None if parent == "." else parent)


def grid_tags(cfg: DictConfig, stabilize_label: str) -> dict[str, str]:
    """The grid's choices for this run, as tags (model, loss, stabilize, dataset, noise, seed)."""
    return {
        "model": str(cfg.model.name),
        "loss": str(cfg.loss.name),
        "stabilize": stabilize_label,
        "dataset": str(cfg.dataset.name),
        "noise": str(cfg.noise.name),
        "seed": str(cfg.seed),
    }


@contextmanager
def mlflow_run(
    client: MlflowClient,
    experiment: str,
    run_name: str,
    tags: Mapping[str, str],
    parent_run_id: str | None = None,
) -> Iterator[RunLogger]:
    """Create a run and end it FINISHED, FAILED (with the error as a tag) or KILLED (Ctrl-C / SIGTERM)."""
    all_tags = {"mlflow.runName": run_name, **tags}
    if parent_run_id:
        all_tags["mlflow.parentRunId"] = parent_run_id
    commit = git_commit()
    if commit:
        all_tags["mlflow.source.git.commit"] = commit
    run = client.create_run(experiment_id(client, experiment), tags=all_tags, run_name=run_name)
    logger = RunLogger(client, run.info.run_id)
    try:
        yield logger
    except KeyboardInterrupt:
        _end(logger, RunStatus.KILLED, "interrupted")
        raise
    except BaseException as exc:
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:5000]
        _end(logger, RunStatus.FAILED, reason)
        raise
    else:
        logger.flush()
        client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.FINISHED))


def _end(logger: RunLogger, status: int, reason: str) -> None:
    try:
        logger.flush()
        logger.set_tags({"error": reason} if status == RunStatus.FAILED else {"killed": reason})
    finally:
        logger.client.set_terminated(logger.run_id, RunStatus.to_string(status))


def to_container(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as plain dicts and lists."""
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
