"""Build what one run trains with: nets, tricks, optimisers, schedules and the step, as the settings compose them.

This is the one place the grid's choices are resolved: the model config names its classes, each
stabilisation trick says what it changes (``ganbench.stabilize``), the loss is looked up by name.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn

from ganbench.device import native_bf16
from ganbench.losses import get_loss
from ganbench.models import build_models, is_conditional
from ganbench.noise import sample_noise
from ganbench.stabilize import GeneratorAverage, InputTransform, TrickSet
from ganbench.train.optim import MomentumRamp, build_optimizer, build_scheduler
from ganbench.train.settings import TrainSettings
from ganbench.train.step import D_UPDATES, GANStep, make_after_d_update, make_penalty, no_op


@dataclass
class Built:
    """Everything one run trains with."""

    step: GANStep
    schedulers: list[Any]
    input_transforms: list[InputTransform]
    conditional: bool
    average: GeneratorAverage | None = None  # the EMA of G, when a trick keeps one

    @property
    def sampler(self) -> nn.Module:
        """The generator that draws samples: the EMA when there is one, else G itself."""
        return self.average.module if self.average is not None else self.step.generator


def amp_enabled(amp: Any, device: torch.device) -> bool:
    """Whether ``train.amp`` turns bf16 autocast on: ``true``; ``auto`` on CUDA; ``native`` where bf16 is in hardware."""
    return amp is True or (amp == "auto" and device.type == "cuda") or (amp == "native" and native_bf16(device))


def autocast_for(amp: Any, device: torch.device) -> Any:
    """bf16 autocast when ``amp_enabled``, else a context that does nothing."""
    if not amp_enabled(amp, device):
        return nullcontext
    return partial(torch.autocast, device_type=device.type, dtype=torch.bfloat16)


def compose(transforms: list[InputTransform]) -> Any:
    """One function applying every input transform in turn (the identity when there is none)."""
    if not transforms:
        return lambda x: x

    def apply(x: Tensor) -> Tensor:
        for transform in transforms:
            x = transform(x)
        return x

    return apply


def build(settings: TrainSettings, num_classes: int, device: torch.device, total_steps: int, epoch_steps: int | None = None) -> Built:
    """Models, optimisers, schedules, loss, label tricks and regularisers as the settings compose them.

    ``epoch_steps`` (generator steps an epoch) turns epoch counts (a step schedule's step_epochs, a momentum
    ramp) into steps; by default it is total_steps / epochs.
    """
    if epoch_steps is None:
        epoch_steps = max(1, total_steps // max(1, settings.epochs))
    tricks = TrickSet(settings.stabilize)
    model_cfg, optim_cfg = settings.model, settings.optim
    generator, discriminator = build_models(model_cfg, settings.z_dim, settings.image_size, num_classes)
    discriminator = tricks.discriminator(discriminator)
    generator, discriminator = generator.to(device), discriminator.to(device)
    if settings.channels_last:
        generator = generator.to(memory_format=torch.channels_last)
        discriminator = discriminator.to(memory_format=torch.channels_last)
    d_lr, g_lr = tricks.learning_rates(float(optim_cfg["d_lr"]), float(optim_cfg["g_lr"]))
    fused = bool(optim_cfg.get("fused", False))
    d_opt = build_optimizer(discriminator.parameters(), optim_cfg, d_lr, fused)
    g_opt = build_optimizer(generator.parameters(), optim_cfg, g_lr, fused)
    if settings.compile:
        generator.compile()
        if not model_cfg.get("gradient_penalty"):
            # The gradient penalty differentiates through D twice, which compiled graphs do not support.
            discriminator.compile()
    loss = get_loss(settings.loss)
    transforms = tricks.input_transforms(total_steps)
    average = tricks.generator_average(generator)
    prior, dim = settings.noise_prior, settings.z_dim
    step = GANStep(
        generator=generator,
        discriminator=discriminator,
        loss=loss,
        targets=tricks.targets(loss),
        sample_noise=lambda n: sample_noise(prior, n, dim, device),
        sample_labels=tricks.label_sampler(lambda n: torch.randint(0, num_classes, (n,), device=device)),
        d_optimizer=d_opt,
        g_optimizer=g_opt,
        perturb=compose(transforms),
        penalty=make_penalty(model_cfg),
        after_d_update=make_after_d_update(model_cfg),
        after_g_update=average.update if average is not None else no_op,
        regularizers=tricks.regularizers(),
        g_regularizers=tricks.generator_regularizers(),
        class_weight=float(model_cfg.get("class_loss_weight", 1.0)),
        autocast=autocast_for(settings.amp, device),
        reuse_fakes=settings.reuse_fakes,
        fakes_take_real_labels=settings.fake_labels == "real",
        d_update=D_UPDATES[settings.d_update],
    )
    schedulers = [build_scheduler(opt, settings.lr_schedule, total_steps, epoch_steps) for opt in (d_opt, g_opt)]
    if optim_cfg.get("momentum_final") is not None:  # SGD only (validated)
        ramp_steps = int(optim_cfg["momentum_ramp_epochs"]) * epoch_steps
        schedulers += [MomentumRamp(opt, optim_cfg["momentum_final"], ramp_steps) for opt in (d_opt, g_opt)]
    return Built(step, schedulers, transforms, is_conditional(generator), average)
