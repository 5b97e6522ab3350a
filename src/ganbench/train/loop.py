"""The training loop: epochs of steps over in-memory tensors, with hooks for logging, sampling and checkpoints.

``fit`` calls the step and the hooks; what a run logs, samples, evaluates or checkpoints lives in the
hooks (``ganbench.train.run``), so the loop reads the same for every configuration.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ganbench.stabilize import InputTransform
from ganbench.train.step import GANStep


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


def steps_per_epoch(n_images: int, batch_size: int, d_steps: int) -> int:
    """Generator steps in one epoch: each takes ``d_steps`` full batches (the last incomplete one is dropped)."""
    return (n_images // batch_size) // d_steps


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
    input_transforms: Sequence[InputTransform] = (),
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
            for transform in input_transforms:  # e.g. instance noise anneals with the step
                transform.step = state.step
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
