"""Resume checkpoints: what one holds, finding the one to continue from, and loading it back."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from ganbench.errors import ConfigError
from ganbench.stabilize import Regularizer
from ganbench.tracking import layout, search_all
from ganbench.tracking.lease import refuse_if_busy
from ganbench.train.build import Built
from ganbench.train.checkpoint import CheckpointDir, config_key
from ganbench.train.loop import LoopState

log = logging.getLogger("ganbench")

# Keys that do not change what is trained: a checkpoint made under other values still resumes.
RESUME_IGNORES = (
    "tracking",
    "eval",
    "data.root",
    "train.resume",
    "train.checkpoint_every",
    "train.keep_checkpoints",
    "train.checkpoint_dir",
    "train.num_threads",
    "train.keep_freed_memory",
    "fresh",
)
UNFINISHED = ("RUNNING", "KILLED", "FAILED")


def checkpoint_dir(config: dict[str, Any], root: str, keep: int) -> CheckpointDir:
    """This config + seed's checkpoint folder under ``root``."""
    return CheckpointDir(root, config_key(config, RESUME_IGNORES), keep)


def run_key(config: dict[str, Any]) -> str:
    """What a run trains, hashed (its checkpoint folder's name): a re-run of the same job has the same key."""
    return config_key(config, RESUME_IGNORES)


def previous_attempts(client: Any, experiment_id: str, key: str, parent_run_id: str | None) -> list[Any]:
    """Runs of this job before: with ``key``, in the same sweep (``parent_run_id``), or outside any sweep."""
    found = search_all(client, experiment_id, f"tags.{layout.RUN_KEY_TAG} = '{key}'")
    return [r for r in found if r.data.tags.get(layout.PARENT_TAG) == parent_run_id]


def is_done(run: Any) -> bool:
    """A run that is a result: FINISHED, or FAILED because it diverged (training it again diverges again)."""
    return run.info.status == "FINISHED" or (run.info.status == "FAILED" and layout.DIVERGED_TAG in run.data.tags)


def find_resume(checkpoints: CheckpointDir, resume: Any, client: Any, parent_run_id: str | None = None) -> dict[str, Any] | None:
    """Per ``train.resume`` (auto / true / false), the checkpoint of an unfinished run to continue, or None.

    In a sweep (``parent_run_id``) only a run of the same sweep is continued: a fresh sweep starts its jobs anew.
    """
    if resume is False:
        return None
    ckpt, skipped = checkpoints.latest()
    for line in skipped:
        log.warning("skipping a damaged checkpoint: %s", line)
    if ckpt is not None:
        try:
            found = client.get_run(ckpt[layout.CKPT_RUN_ID])
            status, parent = found.info.status, found.data.tags.get(layout.PARENT_TAG)
        except Exception:  # the run is not in this store: the checkpoint belongs to another one
            status, parent = None, None
        if parent_run_id is not None and parent != parent_run_id:
            log.info("checkpoint %s belongs to run %s of another sweep; starting afresh", checkpoints.path, ckpt[layout.CKPT_RUN_ID])
            ckpt = None
        elif status not in UNFINISHED:
            log.warning("checkpoint %s belongs to run %s, which this store does not hold unfinished; starting afresh",
                        checkpoints.path, ckpt[layout.CKPT_RUN_ID])
            ckpt = None
        elif status == "RUNNING":
            refuse_if_busy(found)  # RUNNING after the reaper: its process may still train it, then it is not ours
    if ckpt is None and resume is True:
        raise ConfigError(
            f"train.resume=true but there is no checkpoint of this config and seed in {checkpoints.path}; "
            "use train.resume=auto to start a new run"
        )
    return ckpt


def frames_to_tensors(frames: list[Image.Image]) -> list[torch.Tensor]:
    return [torch.from_numpy(np.array(f)) for f in frames]


def tensors_to_frames(tensors: list[torch.Tensor]) -> list[Image.Image]:
    return [Image.fromarray(t.numpy(), mode="L") for t in tensors]


def resume_payload(run_id: str, config: dict[str, Any], state: LoopState, built: Built, frames: list[Image.Image],
                   seconds: float, device: torch.device) -> dict[str, Any]:
    """Everything needed to continue training exactly where ``state`` is."""
    step = built.step
    return {
        layout.CKPT_KIND: "resume",
        layout.CKPT_RUN_ID: run_id,
        layout.CKPT_CONFIG: config,
        layout.CKPT_STEP: state.step,
        layout.CKPT_EPOCH: state.epoch,
        "batch": state.batch,
        "order_state": state.order_state,
        "rng_cpu": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state_all() if device.type == "cuda" else [],
        "generator": step.generator.state_dict(),  # G itself (in a final checkpoint this key is the sampler)
        "generator_average": built.average.state_dict() if built.average is not None else {},
        layout.CKPT_DISCRIMINATOR: step.discriminator.state_dict(),
        "g_optimizer": step.g_optimizer.state_dict(),
        "d_optimizer": step.d_optimizer.state_dict(),
        "schedulers": [s.state_dict() if s is not None else {} for s in built.schedulers],
        "regularizers": [r.state_dict() for r in step.regularizers],  # LeCam's anchors, lazy R1's counter
        "history": state.history,
        "steps": state.steps,
        "frames": frames_to_tensors(frames),
        "seconds": seconds,
    }


def restore_regularizers(ckpt: dict[str, Any], regularizers: Sequence[Regularizer]) -> None:
    """Load the D regularizers' state; a checkpoint written before it was saved leaves them fresh, and says so."""
    saved = ckpt.get("regularizers")
    if saved is None:
        stateful = [type(r).__name__ for r in regularizers if r.state_dict()]
        if stateful:
            log.warning("the checkpoint of step %s holds no regularizer state (an older ganbench wrote it): the state "
                        "of %s starts afresh, so this run will not match an uninterrupted one exactly",
                        ckpt[layout.CKPT_STEP], ", ".join(stateful))
        return
    for regularizer, state in zip(regularizers, saved, strict=True):
        regularizer.load_state_dict(state)


def restore(ckpt: dict[str, Any], built: Built, device: torch.device) -> tuple[LoopState, list[Any], float]:
    """Load a resume checkpoint into the freshly built nets and optimisers; return loop state, frames, seconds."""
    step_fn = built.step
    step_fn.generator.load_state_dict(ckpt["generator"])
    step_fn.discriminator.load_state_dict(ckpt[layout.CKPT_DISCRIMINATOR])
    step_fn.g_optimizer.load_state_dict(ckpt["g_optimizer"])
    if built.average is not None:
        built.average.load_state_dict(ckpt["generator_average"])
    step_fn.d_optimizer.load_state_dict(ckpt["d_optimizer"])
    for scheduler, saved in zip(built.schedulers, ckpt["schedulers"]):
        if scheduler is not None:
            scheduler.load_state_dict(saved)
    restore_regularizers(ckpt, built.step.regularizers)
    torch.set_rng_state(ckpt["rng_cpu"])
    if device.type == "cuda" and ckpt["rng_cuda"]:
        torch.cuda.set_rng_state_all(ckpt["rng_cuda"])
    state = LoopState(
        epoch=ckpt[layout.CKPT_EPOCH],
        step=ckpt[layout.CKPT_STEP],
        batch=ckpt["batch"],
        order_state=ckpt["order_state"],
        history={k: list(v) for k, v in ckpt["history"].items()},
        steps=list(ckpt["steps"]),
    )
    for transform in built.input_transforms:
        transform.step = state.step
    return state, tensors_to_frames(ckpt["frames"]), float(ckpt["seconds"])
