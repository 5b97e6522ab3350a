"""One ganbench run: build what the config asks for, train it, and record it in MLflow."""

from __future__ import annotations

import logging
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
from ganbench.losses import get_loss
from ganbench.models import build_models, is_conditional, keras_param_count
from ganbench.noise import sample_noise
from ganbench.plots import animate, loss_curves, sample_grid
from ganbench.stabilize import InstanceNoise, make_target_maker, stabilize_tag
from ganbench.tracking import RunLogger, flatten, grid_tags, to_container
from ganbench.train import (
    GANStep,
    Hooks,
    LoopState,
    build_optimizer,
    build_scheduler,
    fit,
    learning_rates,
    make_after_d_update,
    make_penalty,
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


def build(cfg: DictConfig, num_classes: int, device: torch.device, total_steps: int) -> Built:
    """Models, optimisers, loss, label tricks and regularisers as the config composes them."""
    stabilize = OmegaConf.to_container(cfg.stabilize, resolve=True)
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    generator, discriminator = build_models(model_cfg, cfg.noise.dim, cfg.dataset.image_size, num_classes, stabilize)
    generator, discriminator = generator.to(device), discriminator.to(device)
    d_lr, g_lr = learning_rates(cfg.optim, stabilize)
    d_opt = build_optimizer(discriminator.parameters(), cfg.optim, d_lr)
    g_opt = build_optimizer(generator.parameters(), cfg.optim, g_lr)
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
    )
    schedulers = [build_scheduler(opt, cfg.train.lr_schedule, cfg.train.epochs) for opt in (d_opt, g_opt)]
    return Built(step, schedulers, instance_noise, conditional)


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


class ProgressBar:
    """A rich progress bar showing epoch, step, losses and images/s."""

    def __init__(self, total_steps: int, epochs: int, description: str):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.epochs = epochs
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            transient=False,
        )
        self.task = self.progress.add_task(description, total=total_steps, status="")

    def __enter__(self) -> "ProgressBar":
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def __call__(self, state: LoopState, values: dict[str, float], images_per_s: float) -> None:
        status = (
            f"epoch {state.epoch + 1}/{self.epochs}  d {values.get('d_loss', float('nan')):.3f}  "
            f"g {values.get('g_loss', float('nan')):.3f}  {images_per_s:,.0f} img/s"
        )
        self.progress.update(self.task, completed=state.step, status=status)


def total_steps(cfg: DictConfig, n_images: int) -> int:
    """Generator steps the run will take."""
    per_epoch = (n_images // cfg.train.batch_size) // cfg.train.d_steps
    steps = per_epoch * cfg.train.epochs
    return min(steps, cfg.train.max_steps) if cfg.train.max_steps else steps


def train_run(cfg: DictConfig, data: Any, logger: RunLogger, device: torch.device) -> dict[str, Any]:
    """Train the configured GAN on ``data`` and log everything to ``logger``'s run."""
    torch.manual_seed(cfg.seed)
    steps = total_steps(cfg, data.images.size(0))
    built = build(cfg, data.num_classes, device, steps)
    gen, disc = built.step.generator, built.step.discriminator
    logger.log_params(
        {
            "model.g_params": sum(p.numel() for p in gen.parameters()),
            "model.d_params": sum(p.numel() for p in disc.parameters()),
            "train.total_steps": steps,
            "device.resolved": str(device),
        }
    )
    images = data.images.to(device)
    labels = data.labels.to(device)
    order = torch.Generator().manual_seed(cfg.seed)
    fixed_z, fixed_labels = fixed_inputs(cfg, data.num_classes, device)
    frames = []
    log_every = cfg.tracking.log_every

    def on_step(state: LoopState, values: dict[str, float]) -> None:
        for key, value in values.items():
            state.history.setdefault(key, []).append(value)
        state.steps.append(state.step)
        if state.step % log_every == 0:
            logger.log_metrics(values, step=state.step)

    def on_epoch_end(state: LoopState, images_per_s: float) -> None:
        logger.log_metrics({"epoch": state.epoch, "images_per_sec": images_per_s}, step=state.step)
        if state.epoch % cfg.train.sample_every == 0 or state.epoch == cfg.train.epochs:
            grid = sample_grid(generate(gen, fixed_z, fixed_labels), nrow=SAMPLES_PER_CLASS)
            frames.append(grid)
            logger.log_image_file(grid, f"samples/epoch_{state.epoch:03d}.png")

    started = time.perf_counter()
    with ProgressBar(steps, cfg.train.epochs, run_name(cfg)) as bar:
        state = fit(
            built.step,
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
            instance_noise=built.instance_noise,
        )
    seconds = time.perf_counter() - started
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


def record_run_inputs(cfg: DictConfig, data: Any, logger: RunLogger) -> None:
    """Params, the resolved config and the environment: what repeating this run needs."""
    params = flatten({k: v for k, v in to_container(cfg).items()})
    params.update({f"data.{k}": v for k, v in data.params().items()})
    params.update(environment())
    params["stabilize.tricks"] = stabilize_tag(cfg.stabilize)
    logger.log_params(params)
    logger.log_text(OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")
    logger.set_tags({"command": " ".join(sys.argv)[:5000]})
