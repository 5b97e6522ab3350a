"""One ganbench run: build what the config asks for, train it, and record it in MLflow."""

from __future__ import annotations

import json
import logging
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from ganbench import __version__
from ganbench.checkpoint import save_checkpoint
from ganbench.evaluate import eval_due, evaluate_generator
from ganbench.losses import get_loss
from ganbench.models import build_models, is_conditional, keras_param_count
from ganbench.noise import sample_noise
from ganbench.progress import progress_bar
from ganbench.plots import animate, loss_curves, sample_grid
from ganbench.stabilize import InstanceNoise, make_target_maker, stabilize_tag
from ganbench.tracking import RunLogger, flatten, grid_tags, to_container
from ganbench.train import (
    CollapseDetector,
    GANStep,
    Hooks,
    LoopState,
    MomentumRamp,
    build_optimizer,
    build_scheduler,
    fit,
    learning_rates,
    make_after_d_update,
    make_penalty,
    steps_per_epoch,
)
from ganbench.validate import ConfigError

log = logging.getLogger(__name__)

SAMPLES_PER_CLASS = 10  # the fixed-noise grid: a row per digit for conditional models


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; ``cuda`` without a GPU is a config error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda but no CUDA GPU is visible; use device=cpu or device=auto")
    return torch.device(name)


def set_determinism(deterministic: bool, device: torch.device) -> None:
    """Deterministic kernels where PyTorch has them (free on the CPU); cuDNN autotuning otherwise.

    On CUDA, cuBLAS needs CUBLAS_WORKSPACE_CONFIG before its first use to be reproducible; an op without a
    deterministic CUDA kernel warns (warn_only) rather than stopping a benchmark run.
    """
    if deterministic and device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic and device.type == "cuda"


def run_name(cfg: DictConfig) -> str:
    """A readable run name: model-loss-stabilize-dataset-noise-seed."""
    if cfg.tracking.run_name:
        return str(cfg.tracking.run_name)
    tags = grid_tags(cfg, stabilize_tag(cfg.stabilize))
    return f"{tags['model']}-{tags['loss']}-{tags['stabilize']}-{tags['dataset']}-{tags['noise']}-s{tags['seed']}"


def environment() -> dict[str, str]:
    """Package versions and platform: what repeating the run needs besides config and data."""
    import hydra
    import mlflow
    import numpy
    import torchvision

    return {
        "env.ganbench": __version__,
        "env.python": platform.python_version(),
        "env.torch": torch.__version__,
        "env.torchvision": torchvision.__version__,
        "env.numpy": numpy.__version__,
        "env.mlflow": mlflow.__version__,
        "env.hydra": hydra.__version__,
        "env.platform": platform.platform(),
    }


def check_data_fits(cfg: DictConfig, n_images: int) -> None:
    """The batch size and discriminator steps must fit the training images at least once per epoch."""
    need = cfg.train.batch_size * cfg.train.d_steps
    if n_images < need:
        limit = f" (data.limit={cfg.data.limit})" if cfg.data.limit else ""
        raise ConfigError(
            f"train.batch_size={cfg.train.batch_size} x train.d_steps={cfg.train.d_steps} needs {need} images per "
            f"step but the training split has {n_images}{limit}; lower train.batch_size or raise data.limit"
        )


@dataclass
class Built:
    """Everything one run trains with."""

    step: GANStep
    schedulers: list[Any]
    instance_noise: InstanceNoise | None
    conditional: bool


def build(cfg: DictConfig, num_classes: int, device: torch.device, total_steps: int, epoch_steps: int | None = None) -> Built:
    """Models, optimisers, schedules, loss, label tricks and regularisers as the config composes them.

    ``epoch_steps`` (generator steps an epoch) turns epoch counts (a step schedule's step_epochs, a momentum
    ramp) into steps; by default it is total_steps / train.epochs.
    """
    if epoch_steps is None:
        epoch_steps = max(1, total_steps // max(1, int(cfg.train.epochs)))
    stabilize = OmegaConf.to_container(cfg.stabilize, resolve=True)
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    generator, discriminator = build_models(model_cfg, cfg.noise.dim, cfg.dataset.image_size, num_classes, stabilize)
    generator, discriminator = generator.to(device), discriminator.to(device)
    if cfg.train.channels_last:
        generator = generator.to(memory_format=torch.channels_last)
        discriminator = discriminator.to(memory_format=torch.channels_last)
    d_lr, g_lr = learning_rates(cfg.optim, stabilize)
    fused = bool(cfg.optim.fused)
    d_opt = build_optimizer(discriminator.parameters(), cfg.optim, d_lr, fused)
    g_opt = build_optimizer(generator.parameters(), cfg.optim, g_lr, fused)
    if cfg.train.compile:
        generator.compile()
        if not model_cfg.get("gradient_penalty"):
            # The gradient penalty differentiates through D twice, which compiled graphs do not support.
            discriminator.compile()
    loss = get_loss(cfg.loss.name)
    instance_noise = None
    if "instance_noise" in stabilize:
        s = stabilize["instance_noise"]
        instance_noise = InstanceNoise(float(s["std"]), int(s["anneal_steps"] or total_steps))
    conditional = is_conditional(generator)
    prior, dim = cfg.noise.name, cfg.noise.dim
    step = GANStep(
        generator=generator,
        discriminator=discriminator,
        loss=loss,
        targets=make_target_maker(loss, stabilize, generator=None),
        sample_noise=lambda n: sample_noise(prior, n, dim, device),
        sample_labels=lambda n: torch.randint(0, num_classes, (n,), device=device),
        d_optimizer=d_opt,
        g_optimizer=g_opt,
        perturb=instance_noise if instance_noise is not None else (lambda x: x),
        penalty=make_penalty(model_cfg),
        after_d_update=make_after_d_update(model_cfg),
        class_weight=float(model_cfg.get("class_loss_weight", 1.0)),
        autocast=autocast_for(cfg.train.amp, device),
    )
    schedulers = [build_scheduler(opt, cfg.train.lr_schedule, total_steps, epoch_steps) for opt in (d_opt, g_opt)]
    if cfg.optim.momentum_final is not None:  # SGD only (validated)
        ramp_steps = int(cfg.optim.momentum_ramp_epochs) * epoch_steps
        schedulers += [MomentumRamp(opt, cfg.optim.momentum_final, ramp_steps) for opt in (d_opt, g_opt)]
    return Built(step, schedulers, instance_noise, conditional)


def autocast_for(amp: Any, device: torch.device) -> Any:
    """bf16 autocast on CUDA (``train.amp=auto|true``); on the CPU only when asked for (``true``), as it is slower there."""
    from contextlib import nullcontext
    from functools import partial

    wanted = amp is True or (amp == "auto" and device.type == "cuda")
    if not wanted:
        return nullcontext
    return partial(torch.autocast, device_type=device.type, dtype=torch.bfloat16)


def fixed_inputs(cfg: DictConfig, num_classes: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The noise and labels behind every epoch's sample grid: a row per class, ten samples each."""
    g = torch.Generator().manual_seed(cfg.seed + 1_000_003)
    n = num_classes * SAMPLES_PER_CLASS
    z = sample_noise(cfg.noise.name, n, cfg.noise.dim, "cpu", generator=g).to(device)
    labels = torch.arange(num_classes).repeat_interleave(SAMPLES_PER_CLASS).to(device)
    return z, labels


@torch.no_grad()
def generate(generator: nn.Module, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Samples in eval mode (BatchNorm running statistics), restoring the previous mode."""
    was_training = generator.training
    generator.eval()
    try:
        return generator(z, labels)
    finally:
        generator.train(was_training)


def training_status(state: LoopState, values: dict[str, float], images_per_s: float, epochs: int) -> str:
    """The progress bar's text: epoch, losses, images/s."""
    return (
        f"epoch {state.epoch + 1}/{epochs}  d {values.get('d_loss', float('nan')):.3f}  "
        f"g {values.get('g_loss', float('nan')):.3f}  {images_per_s:,.0f} img/s"
    )


def total_steps(cfg: DictConfig, n_images: int) -> int:
    """Generator steps the run will take."""
    steps = steps_per_epoch(n_images, cfg.train.batch_size, cfg.train.d_steps) * cfg.train.epochs
    return min(steps, cfg.train.max_steps) if cfg.train.max_steps else steps


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
)


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; a checkpoint was written and the run is marked KILLED."""

    def __init__(self, signum: int):
        super().__init__(f"stopped by signal {signum}")
        self.signum = signum


class StopRequest:
    """Turns SIGINT/SIGTERM into a request the loop honours between steps, so the checkpoint is consistent.

    A second Ctrl-C stops at once.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "StopRequest":
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        import signal

        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:
            raise Interrupted(signum)
        self.signum = signum


def frames_to_tensors(frames: list[Any]) -> list[torch.Tensor]:
    import numpy as np

    return [torch.from_numpy(np.array(f)) for f in frames]


def tensors_to_frames(tensors: list[torch.Tensor]) -> list[Any]:
    from PIL import Image

    return [Image.fromarray(t.numpy(), mode="L") for t in tensors]


def train_run(
    cfg: DictConfig,
    data: Any,
    logger: RunLogger,
    device: torch.device,
    checkpoints: Any = None,
    resume: dict[str, Any] | None = None,
    stop: StopRequest | None = None,
) -> dict[str, Any]:
    """Train the configured GAN on ``data`` and log everything to ``logger``'s run.

    With ``checkpoints`` (a CheckpointDir) the loop writes resume checkpoints every
    ``train.checkpoint_every`` steps and at each epoch end; ``resume`` continues from one.
    """
    torch.manual_seed(cfg.seed)
    steps = total_steps(cfg, data.images.size(0))
    built = build(cfg, data.num_classes, device, steps, steps_per_epoch(data.images.size(0), cfg.train.batch_size, cfg.train.d_steps))
    step_fn = built.step
    gen, disc = step_fn.generator, step_fn.discriminator
    images = data.images.to(device)
    if cfg.train.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    labels = data.labels.to(device)
    order = torch.Generator().manual_seed(cfg.seed)
    fixed_z, fixed_labels = fixed_inputs(cfg, data.num_classes, device)
    frames: list[Any] = []
    state = LoopState()
    seconds_before = 0.0
    if resume is not None:
        state, frames, seconds_before = restore(resume, built, device)
        logger.skip_logged_steps()
        logger.set_tags({"resumed_from_step": state.step})
        log.info("resuming run %s from step %d (epoch %d)", logger.run_id, state.step, state.epoch)
    else:
        logger.log_params(
            {
                "model.g_params": sum(p.numel() for p in gen.parameters()),
                "model.d_params": sum(p.numel() for p in disc.parameters()),
                "train.total_steps": steps,
                "device.resolved": str(device),
            }
        )
    log_every = cfg.tracking.log_every
    checkpoint_every = cfg.train.checkpoint_every
    collapse = CollapseDetector(cfg.train.collapse_patience, probabilistic=step_fn.loss.probabilistic)
    started = time.perf_counter()

    def save_resume_checkpoint(state: LoopState) -> None:
        if checkpoints is None:
            return
        logger.flush()  # MLflow holds every step up to the checkpoint; a resume skips what it already has
        checkpoints.save(
            state.step,
            {
                "kind": "resume",
                "run_id": logger.run_id,
                "config": to_container(cfg),
                "step": state.step,
                "epoch": state.epoch,
                "batch": state.batch,
                "order_state": state.order_state,
                "rng_cpu": torch.get_rng_state(),
                "rng_cuda": torch.cuda.get_rng_state_all() if device.type == "cuda" else [],
                "generator": gen.state_dict(),
                "discriminator": disc.state_dict(),
                "g_optimizer": step_fn.g_optimizer.state_dict(),
                "d_optimizer": step_fn.d_optimizer.state_dict(),
                "schedulers": [s.state_dict() if s is not None else {} for s in built.schedulers],
                "history": state.history,
                "steps": state.steps,
                "frames": frames_to_tensors(frames),
                "seconds": seconds_before + time.perf_counter() - started,
            },
        )

    def on_step(state: LoopState, values: dict[str, float]) -> None:
        for key, value in values.items():
            state.history.setdefault(key, []).append(value)
        state.steps.append(state.step)
        if state.step % log_every == 0:
            logger.log_metrics(values, step=state.step)
        collapse(state.step, values)
        if checkpoint_every and state.step % checkpoint_every == 0:
            save_resume_checkpoint(state)
        if stop is not None and stop.signum is not None:
            save_resume_checkpoint(state)
            raise Interrupted(stop.signum)

    def on_epoch_end(state: LoopState, images_per_s: float) -> None:
        logger.log_metrics({"epoch": state.epoch, "images_per_sec": images_per_s}, step=state.step)
        if state.epoch % cfg.train.sample_every == 0 or state.epoch == cfg.train.epochs:
            grid = sample_grid(generate(gen, fixed_z, fixed_labels), nrow=SAMPLES_PER_CLASS)
            frames.append(grid)
            logger.log_image_file(grid, f"samples/epoch_{state.epoch:03d}.png")
        last = state.epoch >= cfg.train.epochs or (cfg.train.max_steps is not None and state.step >= cfg.train.max_steps)
        if eval_due(cfg, state.epoch) and not last:  # the final evaluation runs after training
            evaluate_generator(cfg, gen, built.conditional, data.num_classes, device, logger, step=state.step)
            gen.train()
        save_resume_checkpoint(state)

    with progress_bar(run_name(cfg), steps) as update:

        def bar(state: LoopState, values: dict[str, float], images_per_s: float) -> None:
            update(completed=state.step, status=training_status(state, values, images_per_s, cfg.train.epochs))

        bar(state, {}, 0.0)
        state = fit(
            step_fn,
            images,
            labels,
            batch_size=cfg.train.batch_size,
            epochs=cfg.train.epochs,
            max_steps=cfg.train.max_steps,
            d_steps=cfg.train.d_steps,
            order_generator=order,
            schedulers=built.schedulers,
            hooks=Hooks(on_step=on_step, on_epoch_end=on_epoch_end),
            progress=bar,
            state=state,
            instance_noise=built.instance_noise,
        )
    seconds = seconds_before + time.perf_counter() - started
    logger.flush()
    logger.log_metrics({"train_seconds": seconds}, step=state.step)

    if state.steps:
        logger.log_figure(loss_curves(state.history, state.steps, run_name(cfg)), "plots/loss_curves.png")
    if frames:
        with tempfile.TemporaryDirectory() as tmp:
            gif = Path(tmp) / "training.gif"
            gif.write_bytes(animate(frames))
            logger.log_artifact(gif, "samples")
    with tempfile.TemporaryDirectory() as tmp:
        path = save_checkpoint(
            Path(tmp) / "final.pt",
            {
                "kind": "final",
                "config": to_container(cfg),
                "generator": gen.state_dict(),
                "discriminator": disc.state_dict(),
                "step": state.step,
                "epoch": state.epoch,
                "num_classes": data.num_classes,
            },
        )
        logger.log_artifact(path, "checkpoints")
    logger.flush()
    return {"steps": state.step, "epochs": state.epoch, "seconds": seconds, "generator": gen, "conditional": built.conditional}


def restore(ckpt: dict[str, Any], built: Built, device: torch.device) -> tuple[LoopState, list[Any], float]:
    """Load a resume checkpoint into the freshly built nets and optimisers; return loop state, frames, seconds."""
    step_fn = built.step
    step_fn.generator.load_state_dict(ckpt["generator"])
    step_fn.discriminator.load_state_dict(ckpt["discriminator"])
    step_fn.g_optimizer.load_state_dict(ckpt["g_optimizer"])
    step_fn.d_optimizer.load_state_dict(ckpt["d_optimizer"])
    for scheduler, saved in zip(built.schedulers, ckpt["schedulers"]):
        if scheduler is not None:
            scheduler.load_state_dict(saved)
    torch.set_rng_state(ckpt["rng_cpu"])
    if device.type == "cuda" and ckpt["rng_cuda"]:
        torch.cuda.set_rng_state_all(ckpt["rng_cuda"])
    state = LoopState(
        epoch=ckpt["epoch"],
        step=ckpt["step"],
        batch=ckpt["batch"],
        order_state=ckpt["order_state"],
        history={k: list(v) for k, v in ckpt["history"].items()},
        steps=list(ckpt["steps"]),
    )
    if built.instance_noise is not None:
        built.instance_noise.step = state.step
    return state, tensors_to_frames(ckpt["frames"]), float(ckpt["seconds"])


def record_run_inputs(cfg: DictConfig, data: Any, logger: RunLogger) -> None:
    """Params, the resolved config and the environment: what repeating this run needs."""
    params = flatten({k: v for k, v in to_container(cfg).items()})
    params.update({f"data.{k}": v for k, v in data.params().items()})
    params.update(environment())
    params["stabilize.tricks"] = stabilize_tag(cfg.stabilize)
    logger.log_params(params)
    logger.log_text(OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")
    # Full paths and sha256 of every data file read (params carry a short form).
    logger.log_text(json.dumps(data.files, indent=1), "data_files.json")
    logger.set_tags({"command": " ".join(sys.argv)[:5000]})
