"""Re-scoring logged runs: ``python -m ganbench.evaluate run_id=<id> | experiment=<name> [overrides]``.

Each run's generator is rebuilt from its final checkpoint in MLflow and scored with this command's eval
settings (and data location) on the run's own dataset and noise prior; the metrics are added to that run.
"""

from __future__ import annotations

import logging
import math
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from hydra import compose, initialize_config_module
from hydra.errors import HydraException
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig, OmegaConf
from torch import nn

from ganbench.device import resolve_device, set_threads
from ganbench.errors import EXIT_USAGE, ConfigError, UserError, hydra_message, print_error
from ganbench.evaluate.errors import EvalError
from ganbench.evaluate.settings import EvalSettings
from ganbench.evaluate.stage import evaluate_generator
from ganbench.models import build_generator
from ganbench.tracking import RunLogger, check_reachable, make_client, reap_dead_runs, search_all, sqlite_path
from ganbench.tracking.layout import (
    CHECKPOINT_ARTIFACT,
    CKPT_CONFIG,
    CKPT_GENERATOR,
    CKPT_NUM_CLASSES,
    CKPT_STEP,
    NOT_TRAINING,
    RESCORED_TAG,
    ROLE_TAG,
    rescore_artifact_dir,
)
from ganbench.train.checkpoint import CheckpointError, load_checkpoint

PROG = "ganbench.evaluate"
EXPERIMENT_KEYS = ("experiment", "tracking.experiment")  # this command's spelling, and the main app's


def load_generator(checkpoint: Mapping[str, Any], device: torch.device) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a run's generator from its final checkpoint; returns it with the run's config (a plain dict)."""
    run_cfg = OmegaConf.to_container(OmegaConf.create(dict(checkpoint[CKPT_CONFIG])), resolve=True)
    assert isinstance(run_cfg, dict)
    generator = build_generator(run_cfg["model"], int(run_cfg["noise"]["dim"]), int(run_cfg["dataset"]["image_size"]), int(checkpoint[CKPT_NUM_CLASSES]))
    generator.load_state_dict(checkpoint[CKPT_GENERATOR])
    return generator.to(device).eval(), run_cfg


def evaluate_run(settings: EvalSettings, client: Any, run_id: str, device: torch.device) -> dict[str, float]:
    """Load run ``run_id``'s generator from MLflow, score it with ``settings``' eval settings and add the metrics to that run."""
    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise EvalError(f"no run {run_id!r} in {client.tracking_uri}; check run_id= and tracking.uri=") from None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = client.download_artifacts(run_id, CHECKPOINT_ARTIFACT, tmp)
        except (MlflowException, OSError):
            raise EvalError(f"run {run_id} has no {CHECKPOINT_ARTIFACT} artifact; only finished ganbench training runs can be re-scored") from None
        try:
            checkpoint = load_checkpoint(local)
        except CheckpointError as err:
            raise EvalError(str(err)) from None
    generator, run_cfg = load_generator(checkpoint, device)
    # This command's eval settings and data location; the run's dataset and noise; the run's experiment.
    experiment = client.get_experiment(run.info.experiment_id).name
    run_settings = settings.with_run(run_cfg["dataset"], run_cfg["noise"]["name"], run_cfg["noise"]["dim"], experiment)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    logger = RunLogger(client, run_id)
    metrics = evaluate_generator(
        run_settings,
        generator,
        bool(getattr(generator, "conditional", False)),
        int(checkpoint[CKPT_NUM_CLASSES]),
        device,
        logger,
        step=int(checkpoint.get(CKPT_STEP, 0)),
        artifact_dir=rescore_artifact_dir(stamp),
    )
    logger.set_tags({RESCORED_TAG: stamp})
    return metrics


def runs_to_score(client: Any, experiment: str) -> list[str]:
    """Finished training runs of ``experiment`` (classifier, reference and sweep parent runs left out)."""
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise EvalError(f"no experiment {experiment!r} in this store; check experiment= and tracking.uri=")
    reap_dead_runs(client, [exp.experiment_id])
    runs = search_all(client, exp.experiment_id, "attributes.status = 'FINISHED'")
    return [r.info.run_id for r in runs if r.data.tags.get(ROLE_TAG) not in NOT_TRAINING]


# What a re-scoring can set; everything else comes from the run itself.
SCORING_KEYS = ("eval", "tracking", "data.root", "device", "train.num_threads", "hydra")


def parse_args(argv: Sequence[str]) -> tuple[str | None, str | None, list[str]]:
    """(run_id, experiment, Hydra overrides) from ``key=value`` arguments; ``tracking.experiment=`` names the experiment too."""
    run_id = experiment = None
    overrides = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep:
            raise ConfigError(f"argument {arg!r} is not key=value; use run_id=<id> or experiment=<name> plus config overrides")
        if key == "run_id":
            run_id = value
        elif key in EXPERIMENT_KEYS:
            if experiment is not None and value != experiment:
                raise ConfigError(f"two experiments given ({experiment!r} and {value!r}); give one experiment=<name>")
            experiment = value
        else:
            overrides.append(arg)
    if (run_id is None) == (experiment is None):
        raise ConfigError("give exactly one of run_id=<id> or experiment=<name>")
    for arg in overrides:
        key = arg.partition("=")[0].lstrip("+~")
        if not (key in SCORING_KEYS or key.startswith(tuple(f"{k}." for k in SCORING_KEYS))):
            # A run is scored with its own dataset, noise and generator (rescore.py reads them from its checkpoint).
            raise ConfigError(f"{arg}: a re-scoring takes the run's own model, dataset and noise, so this would change "
                              f"nothing; give eval.*, tracking.*, data.root, device or train.num_threads")
    return run_id, experiment, overrides


def compose_config(overrides: Sequence[str]) -> DictConfig:
    """The main app's config with ``overrides`` (eval.*, tracking.uri, data.root, device, ...); Hydra's errors as ConfigError."""
    try:
        with initialize_config_module("ganbench.conf", version_base="1.3"):
            return compose("config", overrides=list(overrides))
    except HydraException as exc:
        raise ConfigError(hydra_message(str(exc))) from None


def open_store(uri: str) -> Any:
    """A client for the store whose runs are re-scored; a dead server or a missing SQLite file is refused first.

    MLflow's client would retry a dead server for minutes, and create an empty SQLite store (its folder and
    our lock file too) where none is: neither can hold a run to re-score.
    """
    check_reachable(uri)
    db = sqlite_path(uri)
    if db is not None and not db.exists():
        raise EvalError(f"no MLflow store at {uri}; give tracking.uri= of the store the runs were logged to")
    return make_client(uri)


def rescore(run_id: str | None, experiment: str | None, overrides: Sequence[str]) -> int:
    """Score one run, or every finished training run of ``experiment``; prints a line per run, returns the exit status."""
    cfg = compose_config(overrides)
    settings = EvalSettings.from_config(cfg)
    set_threads((cfg.get("train") or {}).get("num_threads"))
    device = resolve_device(str(cfg.device))
    client = open_store(str(cfg.tracking.uri))
    ids = [run_id] if run_id else runs_to_score(client, str(experiment))
    if not ids:
        raise EvalError(f"experiment {experiment!r} has no finished training runs to score")
    failed = 0
    for rid in ids:
        try:
            metrics = evaluate_run(settings, client, rid, device)
        except EvalError as err:
            if run_id:
                raise
            failed += 1
            print(f"{PROG}: skipped {rid}: {err}", file=sys.stderr)
            continue
        print(f"run {rid}: " + "  ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items()) if math.isfinite(v)))
    return 1 if failed == len(ids) else 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ganbench.evaluate run_id=<id> | experiment=<name> [eval.num_samples=... tracking.uri=...]``."""
    logging.basicConfig(level=logging.INFO, format="[%(name)s] %(levelname)s %(message)s")
    try:
        return rescore(*parse_args(list(sys.argv[1:] if argv is None else argv)))
    except UserError as exc:
        print_error(PROG, exc)
        return EXIT_USAGE
