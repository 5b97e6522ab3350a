"""Stabilisation tricks, each a small function or module applied at one place in the step.

Label tricks act on the discriminator's targets in the loss's own scale
(probability losses: real 1 / fake 0; margin losses: real +1 / fake -1), so
they mean something under every loss:

* ``smooth``: one-sided smoothing, the real target's magnitude becomes 0.9;
* ``smooth_range``: seed S0's jitter, real targets ``y - 0.3 + 0.5u`` and fake
  targets moved toward the undecided value by ``0.3u`` (u ~ U[0, 1]);
* ``noisy``: a fraction ``flip_prob`` of D's targets is swapped with the
  opposite class's target.

Input and architecture tricks: ``instance_noise`` (Gaussian noise on D's inputs,
annealed linearly to 0), ``spectral_norm`` and ``d_dropout`` (on D), ``ttur``
(separate learning rates for D and G, read by the optimiser builder).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ganbench.losses import GANLoss

TRICKS = ("none", "smooth", "smooth_range", "noisy", "instance_noise", "ttur", "spectral_norm", "d_dropout")


def smooth_targets(targets: Tensor, real_target: float) -> Tensor:
    """One-sided smoothing: scale the (positive) real targets to magnitude ``real_target``."""
    return targets * real_target


def smooth_range_targets(
    real: Tensor, fake: Tensor, real_low: float, real_high: float, fake_high: float, generator: torch.Generator | None
) -> tuple[Tensor, Tensor]:
    """Seed S0's jitter: real 1 -> U[real_low, real_high], fake moved toward the real side by U[0, fake_high]."""
    u_real = torch.rand(real.shape, device=real.device, generator=generator)
    u_fake = torch.rand(fake.shape, device=fake.device, generator=generator)
    real = real - (1.0 - real_low) + (real_high - real_low) * u_real
    fake = fake + fake_high * u_fake
    return real, fake


def flip_targets(
    real: Tensor, fake: Tensor, flip_prob: float, generator: torch.Generator | None
) -> tuple[Tensor, Tensor]:
    """Swap a fraction ``flip_prob`` of each batch's targets with the opposite class's.

    Exactly ``round(flip_prob * n)`` targets of each batch are flipped, at distinct
    random positions, so the fraction asked for is the fraction D sees.
    """
    n = real.numel()
    k = int(round(flip_prob * n))
    if k == 0:
        return real, fake
    real_idx = torch.randperm(n, device=real.device, generator=generator)[:k]
    fake_idx = torch.randperm(n, device=fake.device, generator=generator)[:k]
    new_real, new_fake = real.clone(), fake.clone()
    new_real[real_idx] = fake[real_idx]
    new_fake[fake_idx] = real[fake_idx]
    return new_real, new_fake


@dataclass
class TargetMaker:
    """Builds D's real and fake targets for a batch, applying the configured label tricks."""

    loss: GANLoss
    smooth: float | None = None
    smooth_range: tuple[float, float, float] | None = None
    flip_prob: float = 0.0
    generator: torch.Generator | None = None

    def __call__(self, n: int, device: torch.device) -> tuple[Tensor, Tensor]:
        real = torch.full((n,), self.loss.real_target, device=device)
        fake = torch.full((n,), self.loss.fake_target, device=device)
        if self.smooth is not None:
            real = smooth_targets(real, self.smooth)
        if self.smooth_range is not None:
            real, fake = smooth_range_targets(real, fake, *self.smooth_range, generator=self.generator)
        if self.flip_prob > 0:
            real, fake = flip_targets(real, fake, self.flip_prob, self.generator)
        return real, fake

    def generator_targets(self, n: int, device: torch.device) -> Tensor:
        """G always aims for the plain real target: the tricks regularise D only."""
        return torch.full((n,), self.loss.real_target, device=device)


class InstanceNoise:
    """Adds N(0, std^2) to D's inputs, std annealed linearly to 0 over ``anneal_steps`` (Sonderby et al. 2016)."""

    def __init__(self, std: float = 0.0, anneal_steps: int = 1, generator: torch.Generator | None = None):
        self.std, self.anneal_steps, self.generator = std, max(1, anneal_steps), generator
        self.step = 0

    def current_std(self) -> float:
        return self.std * max(0.0, 1.0 - self.step / self.anneal_steps)

    def __call__(self, x: Tensor) -> Tensor:
        std = self.current_std()
        if std <= 0:
            return x
        return x + std * torch.randn(x.shape, device=x.device, dtype=x.dtype, generator=self.generator)


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Wrap every conv and linear layer of ``module`` in spectral normalisation (Miyato et al. 2018)."""
    for name, child in module.named_children():
        if isinstance(child, (nn.Conv2d, nn.Linear, nn.ConvTranspose2d)):
            setattr(module, name, nn.utils.parametrizations.spectral_norm(child))
        else:
            apply_spectral_norm(child)
    return module


def add_dropout(module: nn.Module, p: float) -> nn.Module:
    """Follow every LeakyReLU/ReLU of ``module`` with Dropout(p)."""
    for name, child in module.named_children():
        if isinstance(child, (nn.LeakyReLU, nn.ReLU)):
            setattr(module, name, nn.Sequential(child, nn.Dropout(p)))
        else:
            add_dropout(child, p)
    return module


def trick_names(stabilize: Mapping[str, Any]) -> list[str]:
    """The tricks a ``stabilize`` config section turns on, in config order ([] for none)."""
    return [name for name in stabilize if name != "none"]


def stabilize_tag(stabilize: Mapping[str, Any]) -> str:
    """A short label for the combination, e.g. ``smooth+noisy`` or ``none``."""
    return "+".join(trick_names(stabilize)) or "none"


def make_target_maker(loss: GANLoss, stabilize: Mapping[str, Any], generator: torch.Generator | None) -> TargetMaker:
    """The TargetMaker for the label tricks present in ``stabilize``."""
    smooth = stabilize.get("smooth")
    srange = stabilize.get("smooth_range")
    noisy = stabilize.get("noisy")
    return TargetMaker(
        loss=loss,
        smooth=float(smooth["real_target"]) if smooth else None,
        smooth_range=(float(srange["real_low"]), float(srange["real_high"]), float(srange["fake_high"])) if srange else None,
        flip_prob=float(noisy["flip_prob"]) if noisy else 0.0,
        generator=generator,
    )
