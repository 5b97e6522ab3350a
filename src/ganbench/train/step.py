"""One GAN training step: a discriminator update, then a generator update, each readable top to bottom.

The grid's choices (loss, label tricks, D's input transforms, penalties, weight clipping) are injected
when the step is built (``ganbench.train.build``), never branched on by name inside it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn

from ganbench.losses import GANLoss, class_loss, gradient_penalty
from ganbench.stabilize import Regularizer, TargetMaker


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
    after_g_update: Callable[[nn.Module], None] = no_op  # e.g. the EMA of G's weights
    regularizers: Sequence[Regularizer] = ()  # the tricks' terms of D's loss: R1, LeCam, consistency
    class_weight: float = 1.0  # ACGAN's auxiliary classification loss weight
    autocast: Callable[[], Any] = nullcontext  # bf16 autocast on CUDA when train.amp asks for it
    # The G update reuses the last D update's fakes: one G forward a step, as the PyTorch DCGAN example.
    reuse_fakes: bool = False
    _fakes: tuple[Tensor, Tensor] | None = field(default=None, init=False, repr=False)

    def discriminator_step(self, real: Tensor, labels: Tensor) -> dict[str, Tensor]:
        n = real.size(0)
        z, fake_labels = self.sample_noise(n), self.sample_labels(n)
        with torch.set_grad_enabled(self.reuse_fakes), self.autocast():
            fake = self.generator(z, fake_labels)
        self._fakes = (fake, fake_labels) if self.reuse_fakes else None  # with its graph, for the G update
        fake = fake.detach()  # D's update never reaches G
        real_targets, fake_targets = self.targets(n, real.device)

        with self.autocast():
            real_logits, real_classes = self.discriminator(self.perturb(real), labels)
            fake_logits, fake_classes = self.discriminator(self.perturb(fake), fake_labels)
            loss = self.loss.d_loss(real_logits, fake_logits, real_targets, fake_targets)
            loss = loss + self.class_weight * (class_loss(real_classes, labels) + class_loss(fake_classes, fake_labels))
            loss = loss + self.penalty(self.discriminator, real, fake, labels)
            for regularizer in self.regularizers:
                loss = loss + regularizer(self.discriminator, real, fake, labels, fake_labels, real_logits, fake_logits)

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
        fake, fake_labels = self._fakes if self._fakes is not None else self._generate(n)
        self._fakes = None
        with self.autocast():
            logits, classes = self.discriminator(self.perturb(fake), fake_labels)
            loss = self.loss.g_loss(logits, self.targets.generator_targets(n, device))
            loss = loss + self.class_weight * class_loss(classes, fake_labels)

        self.g_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.g_optimizer.step()
        self.after_g_update(self.generator)
        return {"g_loss": loss.detach()}

    def _generate(self, n: int) -> tuple[Tensor, Tensor]:
        z, fake_labels = self.sample_noise(n), self.sample_labels(n)
        with self.autocast():
            return self.generator(z, fake_labels), fake_labels

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
