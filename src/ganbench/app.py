"""The Hydra app: ``python -m ganbench [overrides]`` trains one configuration, ``-m`` sweeps a grid."""

from __future__ import annotations

import logging
import sys
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from ganbench import validate
from ganbench.data import DEFAULT_PREPROCESS, drawn_from, load_dataset
from ganbench.device import resolve_device, set_determinism, set_threads
from ganbench.errors import EXIT_USAGE, UserError, print_error, run_compact
from ganbench.files import WriteError
from ganbench.memory import keep_freed_memory
from ganbench.models import is_conditional
from ganbench import evaluate
from ganbench.evaluate import EvalSettings
from ganbench.evaluate.features import inception_weights
from ganbench.stabilize import TrickSet, stabilize_tag
from ganbench.sweep.parent import in_multirun, sweep_parent_run_id
from ganbench.tracking import (
    TrackingError,
    check_reachable,
    experiment_id,
    grid_tags,
    layout,
    make_client,
    mlflow_run,
    reap_dead_runs,
    to_container,
)
from ganbench.tracking.lease import refuse_if_busy
from ganbench.train.interrupt import Interrupted, StopRequest
from ganbench.train.loop import DivergedError
from ganbench.train.run import check_data_fits, train_run
from ganbench.train.settings import TrainSettings
from ganbench.train.record import record_dataset, record_generator_model, record_run_inputs
from ganbench.train.resume import checkpoint_dir, find_resume, is_done, previous_attempts, run_key

log = logging.getLogger("ganbench")
PROG = "ganbench"


def task_overrides() -> list[str]:
    """The command line's overrides of this run (or sweep job), when Hydra started it."""
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def run_name(cfg: DictConfig) -> str:
    """A readable run name: model-loss-stabilize-dataset-noise-seed."""
    if cfg.tracking.run_name:
        return str(cfg.tracking.run_name)
    tags = grid_tags(cfg, stabilize_tag(to_container(cfg.stabilize)))
    return f"{tags['model']}-{tags['loss']}-{tags['stabilize']}-{tags['dataset']}-{tags['noise']}-s{tags['seed']}"


def already_ran(cfg: DictConfig, done: Any) -> dict[str, Any]:
    """The result of a job that already finished (or diverged): said, not trained again."""
    where = f"experiment {cfg.tracking.experiment!r} of {cfg.tracking.uri}"
    if done.data.tags.get(layout.PARENT_TAG):
        log.info("job already %s as run %s; not trained again", done.info.status, done.info.run_id)
    else:
        print(f"{PROG}: this configuration already ran: run {done.info.run_id} ({done.info.status}) in {where}; "
              "fresh=true trains it again", file=sys.stderr)
    return {"run_id": done.info.run_id, "status": done.info.status, "reused": True, "metrics": dict(done.data.metrics)}


def run(cfg: DictConfig, parent_run_id: str | None = None) -> dict[str, Any]:
    """Validate, load the data, then train, evaluate and record one run.

    Bad config, data or tracking URI raise before any MLflow run exists.
    """
    validate.check(cfg, task_overrides())
    for line in validate.config_advice(cfg):
        log.warning(line)
    evaluation = EvalSettings.from_config(cfg)
    if evaluation.enabled:
        inception_weights(evaluation.inception)  # eval.inception=on without weights fails now, not after training
    name = run_name(cfg)
    settings = TrainSettings.from_config(cfg, name)
    set_threads(cfg.train.num_threads)
    if cfg.train.keep_freed_memory:
        keep_freed_memory()
    device = resolve_device(cfg.device)
    set_determinism(cfg.train.deterministic, device)
    data = load_dataset(
        cfg.dataset.name,
        split="train",
        image_size=cfg.dataset.image_size,
        root=cfg.data.root,
        limit=cfg.data.limit,
        download=cfg.dataset.download,
        preprocess=cfg.dataset.get("preprocess", DEFAULT_PREPROCESS),
        with_test=bool(cfg.dataset.get("train_with_test", False)),
    )
    check_data_fits(settings, data.images.size(0), cfg.data.limit)
    check_reachable(cfg.tracking.uri)
    client = make_client(cfg.tracking.uri)
    exp_id = experiment_id(client, cfg.tracking.experiment)
    reap_dead_runs(client, [exp_id])
    key = run_key(settings.config)
    previous = [] if cfg.fresh else previous_attempts(client, exp_id, key, parent_run_id)
    done = next((r for r in previous if is_done(r)), None)
    if done is not None:
        return already_ran(cfg, done)
    for attempt in previous:  # reaped above when dead: a RUNNING one left is another process's, still training
        refuse_if_busy(attempt)
    checkpoints = checkpoint_dir(settings.config, cfg.train.checkpoint_dir, cfg.train.keep_checkpoints)
    resume = None if cfg.fresh else find_resume(checkpoints, cfg.train.resume, client, parent_run_id)
    if parent_run_id is not None:
        for stale in previous:
            if resume is None or stale.info.run_id != resume["run_id"]:
                # Killed before its first checkpoint: the job starts over, and stays one run in its sweep.
                client.delete_run(stale.info.run_id)

    tags = grid_tags(cfg, stabilize_tag(settings.stabilize)) | TrickSet(settings.stabilize).tags() | {layout.RUN_KEY_TAG: key}
    if evaluation.enabled and trains_on_heldout(cfg, data, evaluation.heldout_split):
        tags[layout.HELDOUT_SEEN_TAG] = "true"  # as dataset.train_with_test: held-out metrics score digits G saw
    with StopRequest() as stop, mlflow_run(
        client,
        cfg.tracking.experiment,
        name,
        tags,
        parent_run_id=parent_run_id,
        run_id=resume["run_id"] if resume else None,
        flush_every=cfg.tracking.flush_every,
        system_metrics_every=cfg.tracking.system_metrics,
    ) as logger:
        if resume is None:
            record_run_inputs(cfg, data, logger)
            record_dataset(logger, data)

        def score(generator: Any, step: int) -> dict[str, float]:
            # evaluate.evaluate_generator is imported on first use (torchvision, torch-fidelity, torchmetrics:
            # 1-2 s here): a run with eval.enabled=false, and every joblib worker of such a sweep, starts without it.
            return evaluate.evaluate_generator(evaluation, generator, is_conditional(generator), data.num_classes, device, logger, step=step)

        def on_epoch_eval(generator: Any, epoch: int, step: int) -> None:
            if evaluation.enabled and evaluation.every and epoch % evaluation.every == 0:
                score(generator, step)

        result = train_run(settings, data, logger, device, checkpoints=checkpoints, resume=resume, stop=stop,
                           on_epoch_eval=on_epoch_eval)
        log.info("run %s trained: %d steps in %.1f s", logger.run_id, result["steps"], result["seconds"])
        if cfg.tracking.log_model:
            record_generator_model(logger, result["generator"])
        if evaluation.enabled:
            result["metrics"] = score(result["generator"], result["steps"])
    checkpoints.clear()  # finished: the final checkpoint lives in MLflow
    return {
        "run_id": logger.run_id,
        "status": "FINISHED",
        **{k: result[k] for k in ("steps", "epochs", "seconds")},
        "metrics": result.get("metrics", {}),
    }


def trains_on_heldout(cfg: DictConfig, data: Any, heldout_split: str) -> bool:
    """Whether the training images include the held-out split the evaluation scores against: asked for
    (``dataset.train_with_test``), or standing in for a missing training split (MNIST without its training files)."""
    if cfg.dataset.get("train_with_test"):
        return True
    heldout = load_dataset(cfg.dataset.name, split=heldout_split, image_size=cfg.dataset.image_size, root=cfg.data.root,
                           download=cfg.dataset.download, preprocess=cfg.dataset.get("preprocess", DEFAULT_PREPROCESS))
    return drawn_from(data, heldout)


def job_outcome(exc: BaseException, error: str) -> dict[str, Any]:
    """A sweep job's outcome for an error: INVALID when bad input stopped it before any run existed, else FAILED
    with the run it left (``mlflow_run`` records its id on the error): a full or read-only store is no bad config."""
    run_id = getattr(exc, "run_id", None)
    unwritable = isinstance(exc, (WriteError, TrackingError))  # the sweep ends with status 2: a store to fix, no result
    bad_input = isinstance(exc, UserError) and not unwritable
    status = "INVALID" if bad_input and run_id is None else "FAILED"
    return {"status": status, "run_id": run_id, "error": error, "unwritable": unwritable}


@hydra.main(version_base="1.3", config_path="pkg://ganbench.conf", config_name="config")
def main(cfg: DictConfig) -> dict[str, Any] | None:
    """Entry point of ``python -m ganbench`` and the ``ganbench`` command."""
    try:
        return run(cfg, parent_run_id=sweep_parent_run_id())
    except UserError as exc:
        # One clear line per problem, no traceback: the user fixes the command, not the code.
        print_error(PROG, exc)
        if in_multirun():
            return job_outcome(exc, str(exc))
        sys.exit(EXIT_USAGE)
    except Interrupted as exc:
        print(f"ganbench: {exc}; checkpoint written, run marked KILLED; re-run the same command to resume", file=sys.stderr)
        sys.exit(128 + exc.signum)
    except DivergedError as exc:
        print(f"ganbench: run diverged: {exc}", file=sys.stderr)
        if in_multirun():
            return job_outcome(exc, str(exc))
        sys.exit(3)
    except Exception as exc:
        if in_multirun():
            # The run is already FAILED in MLflow with its reason; the sweep goes on with its other jobs.
            log.exception("job failed")
            return job_outcome(exc, f"{type(exc).__name__}: {exc}")
        raise


def cli() -> None:
    """``python -m ganbench`` and the ``ganbench`` command: ``main``, with Hydra's composition errors (an unknown
    ``model=...``, a malformed override) reported as ours: one line, exit status 2 (``ganbench.errors.run_compact``)."""
    run_compact(main, PROG)
