"""The Hydra app: ``python -m ganbench [overrides]`` trains one configuration, ``-m`` sweeps a grid."""

from __future__ import annotations

import logging
import sys
from typing import Any

import hydra
import torch
from omegaconf import DictConfig

from ganbench import validate
from ganbench.checkpoint import CheckpointDir, config_key
from ganbench.data import DataError, load_dataset
from ganbench.evaluate import USER_ERRORS as EVAL_ERRORS
from ganbench.evaluate import check_eval_config, evaluate_generator
from ganbench.runner import (
    RESUME_IGNORES,
    Interrupted,
    StopRequest,
    check_data_fits,
    record_run_inputs,
    resolve_device,
    run_name,
    set_determinism,
    train_run,
)
from ganbench.stabilize import stabilize_tag
from ganbench.tracking import TrackingError, check_reachable, grid_tags, make_client, mlflow_run, to_container
from ganbench.train import DivergedError

log = logging.getLogger("ganbench")

USER_ERRORS = (validate.ConfigError, DataError, TrackingError, *EVAL_ERRORS)


def find_resume(cfg: DictConfig, client: Any) -> tuple[CheckpointDir, dict[str, Any] | None]:
    """This config + seed's checkpoint folder and, per ``train.resume``, the checkpoint to continue from."""
    checkpoints = CheckpointDir(
        cfg.train.checkpoint_dir, config_key(to_container(cfg), RESUME_IGNORES), cfg.train.keep_checkpoints
    )
    if cfg.train.resume is False:
        return checkpoints, None
    ckpt, skipped = checkpoints.latest()
    for line in skipped:
        log.warning("skipping a damaged checkpoint: %s", line)
    if ckpt is not None:
        try:
            status = client.get_run(ckpt["run_id"]).info.status
        except Exception:  # the run is not in this store: the checkpoint belongs to another one
            status = None
        if status not in ("RUNNING", "KILLED", "FAILED"):
            log.warning("checkpoint %s belongs to run %s, which this store does not hold unfinished; starting afresh",
                        checkpoints.path, ckpt["run_id"])
            ckpt = None
    if ckpt is None and cfg.train.resume is True:
        raise validate.ConfigError(
            f"train.resume=true but there is no checkpoint of this config and seed in {checkpoints.path}; "
            "use train.resume=auto to start a new run"
        )
    return checkpoints, ckpt


def run(cfg: DictConfig, parent_run_id: str | None = None) -> dict[str, Any]:
    """Validate, load the data, then train and record one run.

    Bad config, data or tracking URI raise before any MLflow run exists.
    """
    validate.check(cfg)
    check_eval_config(cfg)
    if cfg.train.num_threads:
        torch.set_num_threads(cfg.train.num_threads)
    device = resolve_device(cfg.device)
    set_determinism(cfg.train.deterministic, device)
    data = load_dataset(
        cfg.dataset.name,
        split="train",
        image_size=cfg.dataset.image_size,
        root=cfg.data.root,
        limit=cfg.data.limit,
        download=cfg.dataset.download,
    )
    check_data_fits(cfg, data.images.size(0))
    check_reachable(cfg.tracking.uri)
    client = make_client(cfg.tracking.uri)
    checkpoints, resume = find_resume(cfg, client)

    tags = grid_tags(cfg, stabilize_tag(cfg.stabilize))
    with StopRequest() as stop, mlflow_run(
        client,
        cfg.tracking.experiment,
        run_name(cfg),
        tags,
        parent_run_id=parent_run_id,
        run_id=resume["run_id"] if resume else None,
        flush_every=cfg.tracking.flush_every,
    ) as logger:
        if resume is None:
            record_run_inputs(cfg, data, logger)
        result = train_run(cfg, data, logger, device, checkpoints=checkpoints, resume=resume, stop=stop)
        log.info("run %s trained: %d steps in %.1f s", logger.run_id, result["steps"], result["seconds"])
        if cfg.eval.enabled:
            metrics = evaluate_generator(
                cfg, result["generator"], result["conditional"], data.num_classes, device, logger, step=result["steps"]
            )
            result["metrics"] = metrics
    checkpoints.clear()  # finished: the final checkpoint lives in MLflow
    return {
        "run_id": logger.run_id,
        "status": "FINISHED",
        **{k: result[k] for k in ("steps", "epochs", "seconds")},
        "metrics": result.get("metrics", {}),
    }


PARENT_RUN_FILE = "mlflow_parent_run.json"  # written into the sweep folder by ganbench.callbacks.MlflowParentRun


def sweep_parent_run_id() -> str | None:
    """In a multirun, the MLflow parent run the sweep's callback opened (a file in the sweep folder, so
    it reaches jobs under every launcher: joblib workers, submitit processes, SLURM nodes)."""
    import json
    from pathlib import Path

    from hydra.core.hydra_config import HydraConfig

    if not in_multirun():
        return None
    path = Path(HydraConfig.get().sweep.dir) / PARENT_RUN_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text())["run_id"]


def in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> dict[str, Any] | None:
    """Entry point of ``python -m ganbench`` and the ``ganbench`` command."""
    try:
        return run(cfg, parent_run_id=sweep_parent_run_id())
    except USER_ERRORS as exc:
        # One clear line per problem, no traceback: the user fixes the command, not the code.
        for line in str(exc).splitlines():
            print(f"ganbench: error: {line}", file=sys.stderr)
        if in_multirun():
            return {"status": "INVALID", "error": str(exc)}
        sys.exit(2)
    except Interrupted as exc:
        print(f"ganbench: {exc}; checkpoint written, run marked KILLED; re-run the same command to resume", file=sys.stderr)
        sys.exit(128 + exc.signum)
    except DivergedError as exc:
        print(f"ganbench: run diverged: {exc}", file=sys.stderr)
        if in_multirun():
            return {"status": "FAILED", "error": str(exc)}
        sys.exit(3)
    except Exception as exc:
        if in_multirun():
            # The run is already FAILED in MLflow with its reason; the sweep goes on with its other jobs.
            log.exception("job failed")
            return {"status": "FAILED", "error": f"{type(exc).__name__}: {exc}"}
        raise
