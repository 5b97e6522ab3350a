"""Optimisers and learning-rate / momentum schedules, as the ``optim`` and ``train.lr_schedule`` config ask."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch


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


def build_scheduler(optimizer: torch.optim.Optimizer, schedule: Mapping[str, Any], total_steps: int, epoch_steps: int) -> Any:
    """Learning-rate schedule, stepped after every generator step: constant, step (x gamma every step_epochs
    epochs, seed S3), cosine (over the run, down to min_factor x the starting rate) or exponential (x gamma every
    step, seed S4's decay)."""
    name = schedule.get("name", "constant")
    if name == "constant":
        return None
    if name == "step":
        every = int(schedule["step_epochs"]) * max(1, epoch_steps)
        return torch.optim.lr_scheduler.StepLR(optimizer, every, float(schedule["gamma"]))
    if name == "cosine":
        floor = float(schedule.get("min_factor", 0.0)) * optimizer.defaults["lr"]  # a factor: G and D may start apart
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total_steps), eta_min=floor)
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
