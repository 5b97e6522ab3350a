"""One GAN training step: a discriminator update, then a generator update, each readable top to bottom.

The grid's choices (loss, label tricks, D's input transforms, penalties, weight clipping, how D takes the
real and the fake batch: ``joint_update`` or ``separate_update``) are injected when the step is built
(``ganbench.train.build``), never branched on by name inside it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import partial
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from ganbench.losses import GANLoss, class_loss, gradient_penalty
from ganbench.stabilize import GeneratorRegularizer, Regularizer, TargetMaker


def no_penalty(critic: nn.Module, real: Tensor, fake: Tensor, labels: Tensor) -> float:
    return 0.0


def clip_weights(module: nn.Module, limit: float) -> None:
    """WGAN's Lipschitz constraint by weight clipping (Arjovsky et al. 2017)."""
    with torch.no_grad():
        for p in module.parameters():
            p.clamp_(-limit, limit)


def no_op(module: nn.Module) -> None:
    return None


class DBatch(NamedTuple):
    """One D update's inputs: the real batch and its labels, the (detached) fakes and theirs, D's targets."""

    real: Tensor
    labels: Tensor
    fake: Tensor
    fake_labels: Tensor
    real_targets: Tensor
    fake_targets: Tensor


DUpdate = Callable[["GANStep", DBatch], tuple[dict[str, Tensor], Tensor, Tensor]]


def joint_update(step: "GANStep", b: DBatch) -> tuple[dict[str, Tensor], Tensor, Tensor]:
    """One optimizer step on the real and the fake batch together (``train.d_update=joint``, PyTorch's DCGAN)."""
    with step.autocast():
        real_logits, real_classes = step.sees(b.real, b.labels)
        fake_logits, fake_classes = step.sees(b.fake, b.fake_labels)
        loss = step.loss.d_loss(real_logits, fake_logits, b.real_targets, b.fake_targets)
        loss = loss + step.class_weight * (class_loss(real_classes, b.labels) + class_loss(fake_classes, b.fake_labels))
        loss = loss + step.penalty(step.discriminator, b.real, b.fake, b.labels)
        for regularizer in step.regularizers:
            loss = loss + regularizer(step.sees, b.real, b.fake, b.labels, b.fake_labels, real_logits, fake_logits)
    step.optimize_d(loss)
    return {"d_loss": loss.detach()}, real_logits, fake_logits


def separate_update(step: "GANStep", b: DBatch) -> tuple[dict[str, Tensor], Tensor, Tensor]:
    """An optimizer step on the real batch, then one on the fake batch (``train.d_update=separate``):
    Keras-GAN's ``d.train_on_batch(real)`` then ``d.train_on_batch(fake)``, seed S1's loop.

    D scores the fakes after its real step, as in Keras. Only real-only regularizers (R1) are carried, in the
    real step; a gradient penalty or a term that reads both batches is refused by ``ganbench.validate``.
    """
    with step.autocast():
        real_logits, real_classes = step.sees(b.real, b.labels)
        real_loss = step.loss.d_term(real_logits, b.real_targets)
        real_loss = real_loss + step.class_weight * class_loss(real_classes, b.labels)
        for regularizer in step.regularizers:  # real-only ones: there are no fake logits yet
            real_loss = real_loss + regularizer(
                step.sees, b.real, b.fake, b.labels, b.fake_labels, real_logits, None)
    step.optimize_d(real_loss)
    with step.autocast():
        fake_logits, fake_classes = step.sees(b.fake, b.fake_labels)
        fake_loss = step.loss.d_term(fake_logits, b.fake_targets)
        fake_loss = fake_loss + step.class_weight * class_loss(fake_classes, b.fake_labels)
    step.optimize_d(fake_loss)
    total = real_loss.detach() + fake_loss.detach()
    # d_loss is the sum, on the scale of train.d_update=joint; Keras-GAN prints the mean, 0.5 * (real + fake).
    return {"d_loss": total, "d_loss_keras": 0.5 * total}, real_logits, fake_logits


D_UPDATES: dict[str, DUpdate] = {"joint": joint_update, "separate": separate_update}  # train.d_update


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
    after_d_update: Callable[[nn.Module], None] = no_op  # e.g. WGAN's weight clipping, once per D update
    after_g_update: Callable[[nn.Module], None] = no_op  # e.g. the EMA of G's weights
    regularizers: Sequence[Regularizer] = ()  # the tricks' terms of D's loss: R1, LeCam, consistency
    g_regularizers: Sequence[GeneratorRegularizer] = ()  # the tricks' terms of G's loss: mode seeking
    class_weight: float = 1.0  # ACGAN's auxiliary classification loss weight
    autocast: Callable[[], Any] = nullcontext  # bf16 autocast when train.amp turns it on (build.amp_enabled)
    # The G update reuses the last D update's fakes: one G forward a step, as the PyTorch DCGAN example.
    reuse_fakes: bool = False
    # The fakes of both updates take the (last) real batch's labels instead of uniform draws (train.fake_labels=real,
    # seed S3's code); unconditional nets ignore labels.
    fakes_take_real_labels: bool = False
    d_update: DUpdate = joint_update  # one optimizer step on both batches, or two (train.d_update)
    _fakes: tuple[Tensor, Tensor, Tensor] | None = field(default=None, init=False, repr=False)  # noise, fakes, labels
    _real_labels: Tensor | None = field(default=None, init=False, repr=False)

    def discriminator_step(self, real: Tensor, labels: Tensor) -> dict[str, Tensor]:
        n = real.size(0)
        self._real_labels = labels
        z, fake_labels = self.sample_noise(n), self._labels_for_fakes(n)
        with torch.set_grad_enabled(self.reuse_fakes), self.autocast():
            fake = self.generator(z, fake_labels)
        self._fakes = (z, fake, fake_labels) if self.reuse_fakes else None  # with its graph, for the G update
        fake = fake.detach()  # D's update never reaches G
        real_targets, fake_targets = self.targets(n, real.device)

        batch = DBatch(real, labels, fake, fake_labels, real_targets, fake_targets)
        out, real_logits, fake_logits = self.d_update(self, batch)  # one optimizer step, or two (train.d_update)
        self.after_d_update(self.discriminator)
        return {
            **out,
            "d_real": self._read(real_logits),
            "d_fake": self._read(fake_logits),
            # The mean targets D was trained toward: smoothing and flips show up here, whatever the loss.
            "d_target_real": real_targets.mean(),
            "d_target_fake": fake_targets.mean(),
        }

    def generator_step(self, n: int, device: torch.device) -> dict[str, Tensor]:
        z, fake, fake_labels = self._fakes if self._fakes is not None else self._generate(n)
        self._fakes = None
        with self.autocast():
            logits, classes = self.sees(fake, fake_labels)
            loss = self.loss.g_loss(logits, self.targets.generator_targets(n, device))
            loss = loss + self.class_weight * class_loss(classes, fake_labels)
            for regularizer in self.g_regularizers:
                loss = loss + regularizer(z, fake, fake_labels)

        self.g_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.g_optimizer.step()
        self.after_g_update(self.generator)
        return {"g_loss": loss.detach()}

    def sees(self, images: Tensor, labels: Tensor) -> tuple[Tensor, Tensor | None]:
        """D's outputs on ``images`` as D sees them: through its input transforms (instance noise, DiffAugment).

        The D regularizers get this too, so R1's gradient is taken through the augmentation at the un-augmented
        images, as StyleGAN2-ADA and DiffAugment's own code do, and no image reaches D unaugmented.
        """
        return self.discriminator(self.perturb(images), labels)

    def optimize_d(self, loss: Tensor) -> None:
        """One optimizer step of D on ``loss``."""
        self.d_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.d_optimizer.step()

    def _labels_for_fakes(self, n: int) -> Tensor:
        """The labels n fakes are drawn for: the last real batch's (train.fake_labels=real) or uniform draws."""
        if self.fakes_take_real_labels:
            if self._real_labels is None or self._real_labels.size(0) != n:
                raise RuntimeError(f"train.fake_labels=real needs a D update on a batch of {n} before the G update")
            return self._real_labels
        return self.sample_labels(n)

    def _generate(self, n: int) -> tuple[Tensor, Tensor, Tensor]:
        z, fake_labels = self.sample_noise(n), self._labels_for_fakes(n)
        with self.autocast():
            return z, self.generator(z, fake_labels), fake_labels

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
