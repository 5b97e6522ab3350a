"""The training step and the loop around it.

``GANStep`` holds one discriminator update and one generator update, each
readable top to bottom; the grid's choices (loss, label tricks, input noise,
penalties, weight clipping) are injected when it is built, never branched on by
name inside it. ``fit`` runs epochs of steps and calls hooks for logging,
sampling and checkpointing around the step.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn

from ganbench.losses import GANLoss, class_loss, gradient_penalty
from ganbench.stabilize import InstanceNoise, TargetMaker


class DivergedError(RuntimeError):
    """Training produced a NaN/inf loss or tripped a collapse detector."""

    diverged = True  # read by the tracking layer to tag the run as diverged, not merely failed


class CollapseDetector:
    """Fires when D separates real from fake perfectly for ``patience`` steps in a row.

    Then G's gradient has vanished (probability losses) and training will not recover;
    stopping saves the rest of a sweep's time. Off when ``patience`` is 0.
    """

    def __init__(self, patience: int = 0, threshold: float = 0.99, probabilistic: bool = True):
        self.patience, self.threshold, self.probabilistic = patience, threshold, probabilistic
        self.run = 0

    def __call__(self, step: int, values: Mapping[str, float]) -> None:
        if not self.patience or not self.probabilistic:
            return
        separated = values["d_real"] > self.threshold and values["d_fake"] < 1 - self.threshold
        self.run = self.run + 1 if separated else 0
        if self.run >= self.patience:
            raise DivergedError(
                f"collapse at step {step}: D(x) > {self.threshold} and D(G(z)) < {1 - self.threshold:.2g} "
                f"for {self.patience} steps in a row"
            )


def no_penalty(critic: nn.Module, real: Tensor, fake: Tensor, labels: Tensor) -> float:
    return 0.0


def clip_weights(module: nn.Module, limit: float) -> None:
    """WGAN's Lipschitz constraint by weight clipping (Arjovsky et al. 2017)."""
    with torch.no_grad():
        for p in module.parameters():
            p.clamp_(-limit, limit)


def no_op(module: nn.Module) -> None:
    return None


@dataclass
class GANStep:
    """One D update and one G update, with the grid's choices injected."""

    generator: nn.Module
    discriminator: nn.Module
    loss: GANLoss
    targets: TargetMaker
    sample_noise: Callable[[int], Tensor]
    sample_labels: Callable[[int], Tensor]
    d_optimizer: torch.optim.Optimizer
    g_optimizer: torch.optim.Optimizer
    perturb: Callable[[Tensor], Tensor] = lambda x: x  # instance noise on D's inputs
    penalty: Callable[..., Tensor | float] = no_penalty  # e.g. WGAN-GP's gradient penalty
    after_d_update: Callable[[nn.Module], None] = no_op  # e.g. WGAN's weight clipping
    class_weight: float = 1.0  # ACGAN's auxiliary classification loss weight
    autocast: Callable[[], Any] = nullcontext  # bf16 autocast on CUDA when train.amp asks for it

    def discriminator_step(self, real: Tensor, labels: Tensor) -> dict[str, Tensor]:
        n = real.size(0)
        z, fake_labels = self.sample_noise(n), self.sample_labels(n)
        with torch.no_grad(), self.autocast():
            fake = self.generator(z, fake_labels)
        real_targets, fake_targets = self.targets(n, real.device)

        with self.autocast():
            real_logits, real_classes = self.discriminator(self.perturb(real), labels)
            fake_logits, fake_classes = self.discriminator(self.perturb(fake), fake_labels)
            loss = self.loss.d_loss(real_logits, fake_logits, real_targets, fake_targets)
            loss = loss + self.class_weight * (class_loss(real_classes, labels) + class_loss(fake_classes, fake_labels))
            loss = loss + self.penalty(self.discriminator, real, fake, labels)

        self.d_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.d_optimizer.step()
        self.after_d_update(self.discriminator)
        return {
            "d_loss": loss.detach(),
            "d_real": self._read(real_logits),
            "d_fake": self._read(fake_logits),
            # The mean targets D was trained toward: smoothing and flips show up here, whatever the loss.
            "d_target_real": real_targets.mean(),
            "d_target_fake": fake_targets.mean(),
        }

    def generator_step(self, n: int, device: torch.device) -> dict[str, Tensor]:
        z, fake_labels = self.sample_noise(n), self.sample_labels(n)
        with self.autocast():
            fake = self.generator(z, fake_labels)
            logits, classes = self.discriminator(self.perturb(fake), fake_labels)
            loss = self.loss.g_loss(logits, self.targets.generator_targets(n, device))
            loss = loss + self.class_weight * class_loss(classes, fake_labels)

        self.g_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.g_optimizer.step()
        return {"g_loss": loss.detach()}

    def _read(self, logits: Tensor) -> Tensor:
        """D's mean output as a user reads it: a probability for probability losses, else the raw score."""
        logits = logits.detach().float()
        return torch.sigmoid(logits).mean() if self.loss.probabilistic else logits.mean()


def make_penalty(model_cfg: Mapping[str, Any]) -> Callable[..., Tensor | float]:
    """The D regulariser the model asks for (``gradient_penalty: lambda``) or none."""
    weight = model_cfg.get("gradient_penalty")
    return partial(gradient_penalty, weight=float(weight)) if weight else no_penalty


def make_after_d_update(model_cfg: Mapping[str, Any]) -> Callable[[nn.Module], None]:
    """WGAN's weight clipping when the model sets ``weight_clip``, else nothing."""
    limit = model_cfg.get("weight_clip")
    return partial(clip_weights, limit=float(limit)) if limit else no_op


def build_optimizer(params: Any, optim_cfg: Mapping[str, Any], lr: float, fused: bool = False) -> torch.optim.Optimizer:
    """Adam, RMSprop or SGD with the config's hyperparameters; ``fused`` uses the single-kernel update where one exists."""
    name = optim_cfg["name"]
    wd = float(optim_cfg.get("weight_decay", 0.0))
    extra = {"fused": True} if fused else {}
    if name == "adam":
        beta1, beta2 = (float(b) for b in optim_cfg["betas"])
        return torch.optim.Adam(params, lr=lr, betas=(beta1, beta2), eps=float(optim_cfg.get("eps", 1e-8)), weight_decay=wd, **extra)
    if name == "rmsprop":
        # No fused RMSprop in torch.
        return torch.optim.RMSprop(
            params, lr=lr, alpha=float(optim_cfg.get("alpha", 0.99)), eps=float(optim_cfg.get("eps", 1e-8)), weight_decay=wd
        )
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=float(optim_cfg.get("momentum", 0.0)), weight_decay=wd, **extra)
    raise ValueError(f"unknown optimiser {name!r}; choose adam, rmsprop or sgd")


def learning_rates(optim_cfg: Mapping[str, Any], stabilize: Mapping[str, Any]) -> tuple[float, float]:
    """(d_lr, g_lr): the TTUR trick's rates when it is on, else the optimiser's."""
    if "ttur" in stabilize:
        return float(stabilize["ttur"]["d_lr"]), float(stabilize["ttur"]["g_lr"])
    return float(optim_cfg["d_lr"]), float(optim_cfg["g_lr"])


def steps_per_epoch(n_images: int, batch_size: int, d_steps: int) -> int:
    """Generator steps in one epoch: each takes ``d_steps`` full batches (the last incomplete one is dropped)."""
    return (n_images // batch_size) // d_steps


def build_scheduler(optimizer: torch.optim.Optimizer, schedule: Mapping[str, Any], total_steps: int, epoch_steps: int) -> Any:
    """Learning-rate schedule, stepped after every generator step: constant, step (x gamma every step_epochs
    epochs, seed S3), cosine (to 0 over the run) or exponential (x gamma every step, seed S4's decay)."""
    name = schedule.get("name", "constant")
    if name == "constant":
        return None
    if name == "step":
        every = int(schedule["step_epochs"]) * max(1, epoch_steps)
        return torch.optim.lr_scheduler.StepLR(optimizer, every, float(schedule["gamma"]))
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total_steps))
    if name == "exponential":
        return torch.optim.lr_scheduler.ExponentialLR(optimizer, float(schedule["gamma"]))
    raise ValueError(f"unknown lr_schedule {name!r}; choose constant, step, cosine or exponential")


class MomentumRamp:
    """SGD momentum moved linearly from its initial value to ``final`` over ``steps`` generator steps.

    The original GAN's MNIST run ramps momentum 0.5 -> 0.7 (Pylearn2's MomentumAdjustor); torch's
    schedulers move momentum only inside their own cycles, so this one is ours. Same interface as a
    scheduler (step, state_dict, load_state_dict), so it rides in the schedulers list and its checkpoints.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, final: float, steps: int) -> None:
        self.optimizer, self.final, self.steps = optimizer, float(final), max(1, int(steps))
        self.start = [float(group["momentum"]) for group in optimizer.param_groups]
        self.last_step = 0

    def step(self) -> None:
        self.last_step += 1
        self._apply()

    def _apply(self) -> None:
        done = min(1.0, self.last_step / self.steps)
        for group, start in zip(self.optimizer.param_groups, self.start, strict=True):
            group["momentum"] = start + (self.final - start) * done

    def state_dict(self) -> dict[str, Any]:
        return {"last_step": self.last_step, "start": list(self.start)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.last_step, self.start = int(state["last_step"]), [float(m) for m in state["start"]]
        self._apply()


@dataclass
class LoopState:
    """Where training is: everything besides the nets and optimisers that a checkpoint must restore."""

    epoch: int = 0  # epochs completed
    step: int = 0  # generator steps completed
    batch: int = 0  # steps completed within the current epoch
    order_state: Tensor | None = None  # data-order RNG state to draw the current (or next) epoch's order from
    history: dict[str, list[float]] = field(default_factory=dict)
    steps: list[int] = field(default_factory=list)


@dataclass
class Hooks:
    """What the loop calls around the step; each hook is optional."""

    on_step: Callable[[LoopState, dict[str, float]], None] | None = None
    on_epoch_end: Callable[[LoopState, float], None] | None = None


def fit(
    step: GANStep,
    images: Tensor,
    labels: Tensor,
    batch_size: int,
    epochs: int,
    max_steps: int | None,
    d_steps: int,
    order_generator: torch.Generator,
    schedulers: list[Any],
    hooks: Hooks,
    progress: Any | None = None,
    state: LoopState | None = None,
    instance_noise: InstanceNoise | None = None,
) -> LoopState:
    """Run epochs of ``d_steps`` D updates + one G update on in-memory tensors; return the final state.

    Each epoch visits the training images in a fresh random order (``order_generator``)
    and drops the last incomplete batch, so every step sees ``batch_size`` images. A
    ``state`` from a checkpoint resumes mid-epoch with the same order as before.
    """
    state = state or LoopState()
    device = images.device
    n = images.size(0)
    per_epoch = steps_per_epoch(n, batch_size, d_steps)
    active_schedulers = [s for s in schedulers if s is not None]  # stepped after every generator step
    if state.order_state is not None:
        order_generator.set_state(state.order_state)
    while state.epoch < epochs and (max_steps is None or state.step < max_steps):
        state.order_state = order_generator.get_state()
        order = torch.randperm(n, generator=order_generator).to(device)
        step.generator.train()
        step.discriminator.train()
        started, seen = time.perf_counter(), 0
        for i in range(state.batch, per_epoch):
            for k in range(d_steps):
                idx = order[(i * d_steps + k) * batch_size : (i * d_steps + k + 1) * batch_size]
                out = step.discriminator_step(images[idx], labels[idx])
            out.update(step.generator_step(batch_size, device))
            for scheduler in active_schedulers:
                scheduler.step()
            state.step += 1
            state.batch = i + 1
            seen += batch_size * d_steps
            if instance_noise is not None:
                instance_noise.step = state.step
            values = {k: v.item() for k, v in out.items()}
            if not all(math.isfinite(v) for v in values.values()):
                bad = ", ".join(f"{k}={v}" for k, v in values.items() if not math.isfinite(v))
                raise DivergedError(f"non-finite loss at step {state.step} ({bad})")
            elapsed = max(time.perf_counter() - started, 1e-9)
            if hooks.on_step:
                hooks.on_step(state, values)
            if progress is not None:
                progress(state, values, seen / elapsed)
            if max_steps is not None and state.step >= max_steps:
                break
        state.epoch += 1
        state.batch = 0
        state.order_state = order_generator.get_state()
        if hooks.on_epoch_end:
            hooks.on_epoch_end(state, seen / max(time.perf_counter() - started, 1e-9))
    return state
