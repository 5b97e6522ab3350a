"""One run's training: build, loop, and the hooks that log, sample, checkpoint and (through the app) evaluate.

Evaluation is not imported here: the app hands ``train_run`` an ``on_epoch_eval`` hook.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ganbench.errors import ConfigError
from ganbench.models.sampling import SAMPLES_PER_CLASS, generate, grid_inputs
from ganbench.images import sample_grid
from ganbench.progress import progress_bar
from ganbench.tracking import RunLogger, layout
from ganbench.train.build import amp_enabled, build
from ganbench.train.checkpoint import CheckpointDir
from ganbench.train.interrupt import Interrupted, StopRequest
from ganbench.train.loop import CollapseDetector, Hooks, LoopState, fit
from ganbench.train.record import record_final
from ganbench.train.resume import restore, resume_payload
from ganbench.train.settings import TrainSettings

log = logging.getLogger(__name__)

# Called after an epoch that is not the last, with (generator, epochs done, generator steps done).
EpochEval = Callable[[nn.Module, int, int], None]


def check_data_fits(settings: TrainSettings, n_images: int, limit: int | None = None) -> None:
    """The batch size and discriminator steps must fit the training images at least once per epoch."""
    need = settings.batch_size * settings.d_steps
    if n_images < need:
        hint = f" (data.limit={limit})" if limit else ""
        raise ConfigError(
            f"train.batch_size={settings.batch_size} x train.d_steps={settings.d_steps} needs {need} images per "
            f"step but the training split has {n_images}{hint}; lower train.batch_size or raise data.limit"
        )


def training_status(state: LoopState, values: dict[str, float], images_per_s: float, epochs: int) -> str:
    """The progress bar's text: epoch, losses, images/s."""
    return (
        f"epoch {state.epoch + 1}/{epochs}  d {values.get('d_loss', float('nan')):.3f}  "
        f"g {values.get('g_loss', float('nan')):.3f}  {images_per_s:,.0f} img/s"
    )


def train_run(
    settings: TrainSettings,
    data: Any,
    logger: RunLogger,
    device: torch.device,
    checkpoints: CheckpointDir | None = None,
    resume: dict[str, Any] | None = None,
    stop: StopRequest | None = None,
    on_epoch_eval: EpochEval | None = None,
) -> dict[str, Any]:
    """Train the configured GAN on ``data`` and log everything to ``logger``'s run.

    With ``checkpoints`` the loop writes resume checkpoints every ``checkpoint_every`` steps and at each
    epoch end; ``resume`` continues from one.
    """
    s = settings
    torch.manual_seed(s.seed)
    n_images = data.images.size(0)
    steps = s.total_steps(n_images)
    built = build(s, data.num_classes, device, steps, s.steps_per_epoch(n_images))
    step_fn = built.step
    gen, disc = step_fn.generator, step_fn.discriminator
    images = data.images.to(device)
    if s.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    labels = data.labels.to(device)
    order = torch.Generator().manual_seed(s.seed)
    fixed_z, fixed_labels = grid_inputs(s.seed, s.noise_prior, s.z_dim, data.num_classes, device)
    frames: list[Any] = []
    state = LoopState()
    seconds_before = 0.0
    if resume is not None:
        state, frames, seconds_before = restore(resume, built, device)
        logger.skip_logged_steps()
        logger.set_tags({layout.RESUMED_TAG: state.step})
        log.info("resuming run %s from step %d (epoch %d)", logger.run_id, state.step, state.epoch)
    else:
        logger.log_params(
            {
                "model.g_params": sum(p.numel() for p in gen.parameters()),
                "model.d_params": sum(p.numel() for p in disc.parameters()),
                "train.total_steps": steps,
                "device.resolved": str(device),
                "train.amp_resolved": "bf16" if amp_enabled(s.amp, device) else "off",  # what train.amp did here
            }
        )
    collapse = CollapseDetector(s.collapse_patience, probabilistic=step_fn.loss.probabilistic)
    started = time.perf_counter()

    def save_resume_checkpoint(state: LoopState) -> None:
        if checkpoints is None:
            return
        logger.flush()  # MLflow holds every step up to the checkpoint; a resume skips what it already has
        seconds = seconds_before + time.perf_counter() - started
        checkpoints.save(state.step, resume_payload(logger.run_id, s.config, state, built, frames, seconds, device))

    def on_step(state: LoopState, values: dict[str, float]) -> None:
        for key, value in values.items():
            state.history.setdefault(key, []).append(value)
        state.steps.append(state.step)
        if state.step % s.log_every == 0:
            logger.log_metrics(values, step=state.step)
        collapse(state.step, values)
        if s.checkpoint_every and state.step % s.checkpoint_every == 0:
            save_resume_checkpoint(state)
        if stop is not None and stop.signum is not None:
            save_resume_checkpoint(state)
            raise Interrupted(stop.signum)

    def on_epoch_end(state: LoopState, images_per_s: float) -> None:
        logger.log_metrics({"epoch": state.epoch, "images_per_sec": images_per_s}, step=state.step)
        last = state.epoch >= s.epochs or (s.max_steps is not None and state.step >= s.max_steps)
        if state.epoch % s.sample_every == 0 or last:  # the final generator's grid, also when max_steps ends the run
            grid = sample_grid(generate(built.sampler, fixed_z, fixed_labels), nrow=SAMPLES_PER_CLASS)
            frames.append(grid)
            logger.log_image_file(grid, layout.sample_grid_artifact(state.epoch))
        if on_epoch_eval is not None and not last:  # the final evaluation runs after training
            on_epoch_eval(built.sampler, state.epoch, state.step)
            gen.train()
        save_resume_checkpoint(state)

    epochs = -(-steps // s.steps_per_epoch(n_images))  # the epochs the run reaches: max_steps may end it early
    with progress_bar(s.run_name, steps) as update:

        def bar(state: LoopState, values: dict[str, float], images_per_s: float) -> None:
            update(completed=state.step, status=training_status(state, values, images_per_s, epochs))

        bar(state, {}, 0.0)
        state = fit(
            step_fn,
            images,
            labels,
            batch_size=s.batch_size,
            epochs=s.epochs,
            max_steps=s.max_steps,
            d_steps=s.d_steps,
            order_generator=order,
            schedulers=built.schedulers,
            hooks=Hooks(on_step=on_step, on_epoch_end=on_epoch_end),
            progress=bar,
            state=state,
            input_transforms=built.input_transforms,
        )
    seconds = seconds_before + time.perf_counter() - started
    logger.flush()
    logger.log_metrics({"train_seconds": seconds}, step=state.step)
    final = {
        layout.CKPT_KIND: "final",
        layout.CKPT_CONFIG: s.config,
        # The generator that samples (the EMA when on): what re-scoring and sampling load; the raw one beside it.
        layout.CKPT_GENERATOR: built.sampler.state_dict(),
        layout.CKPT_GENERATOR_RAW: gen.state_dict(),
        layout.CKPT_DISCRIMINATOR: disc.state_dict(),
        layout.CKPT_STEP: state.step,
        layout.CKPT_EPOCH: state.epoch,
        layout.CKPT_NUM_CLASSES: data.num_classes,
    }
    record_final(logger, state.history, state.steps, frames, s.run_name, final)
    return {"steps": state.step, "epochs": state.epoch, "seconds": seconds, "generator": built.sampler, "conditional": built.conditional}
