"""Stabilisation tricks: one module per trick, each declaring what it changes (see ``base.Trick``).

``conf/stabilize/<name>.yaml`` holds a trick's settings and ``ganbench/stabilize/<name>.py`` its code;
every module of this package is imported here, so a new trick needs nothing else. ``TrickSet`` is the
combination a run selected (``stabilize=[smooth,noisy]``), applied by the trainer's builder.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ganbench.losses import GANLoss
from ganbench.stabilize.base import (REGISTRY, GeneratorAverage, GeneratorRegularizer, InputTransform, Regularizer,
                                    TargetMaker, Trick)

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

NONE = "none"  # conf/stabilize/none.yaml: no trick


def trick_names() -> tuple[str, ...]:
    """Every trick a run can select, ``none`` first."""
    return (NONE, *sorted(REGISTRY))


class TrickSet:
    """The tricks of one ``stabilize`` config section, in config order, and what they change together."""

    def __init__(self, stabilize: Mapping[str, Any] | None) -> None:
        stabilize = stabilize or {}
        self.unknown = [name for name in stabilize if name != NONE and name not in REGISTRY]
        self.tricks: list[Trick] = [REGISTRY[name](stabilize[name] or {}) for name in stabilize if name in REGISTRY]

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tricks]

    def tag(self) -> str:
        """A short label for the combination, e.g. ``smooth+noisy`` or ``none``."""
        return "+".join(self.names) or NONE

    def problems(self) -> list[str]:
        """Unknown tricks, invalid settings and conflicting pairs, one line each."""
        p = [f"stabilize={name!r} is invalid: choose from {', '.join(trick_names())}" for name in self.unknown]
        for trick in self.tricks:
            p += trick.problems()
        names = self.names
        for i, trick in enumerate(self.tricks):
            for other, why in trick.conflicts.items():
                if other in names[i + 1 :]:
                    p.append(f"stabilize=[{trick.name},{other}] conflicts: {why}; keep one of them")
        return p

    def fit_problems(self, config: Mapping[str, Any]) -> list[str]:
        """What the rest of the run's config rules out, one line each (call once ``problems()`` is empty)."""
        return [line for trick in self.tricks for line in trick.fit_problems(config)]

    def advice(self, config: Mapping[str, Any]) -> list[str]:
        """The tricks' warnings about valid but doubtful combinations, one line each."""
        return [line for trick in self.tricks for line in trick.advice(config)]

    def _ordered(self) -> list[Trick]:
        return sorted(self.tricks, key=lambda t: t.stage)

    def discriminator(self, d: nn.Module) -> nn.Module:
        """D with every architectural trick applied."""
        for trick in self._ordered():
            d = trick.discriminator(d)
        return d

    def learning_rates(self, d_lr: float, g_lr: float) -> tuple[float, float]:
        """(d_lr, g_lr) after the tricks that set rates."""
        for trick in self._ordered():
            d_lr, g_lr = trick.learning_rates(d_lr, g_lr)
        return d_lr, g_lr

    def targets(self, loss: GANLoss, generator: torch.Generator | None = None) -> TargetMaker:
        """D's target maker with the label tricks."""
        return TargetMaker(loss, self._ordered(), generator)

    def regularizers(self) -> list[Regularizer]:
        """Terms the tricks add to D's loss."""
        return [r for trick in self._ordered() if (r := trick.regularizer()) is not None]

    def generator_regularizers(self) -> list[GeneratorRegularizer]:
        """Terms the tricks add to G's loss."""
        return [r for trick in self._ordered() if (r := trick.generator_regularizer()) is not None]

    def label_sampler(self, sample: Callable[[int], Tensor]) -> Callable[[int], Tensor]:
        """The fakes' label sampler after the tricks that change how labels are drawn."""
        for trick in self._ordered():
            sample = trick.label_sampler(sample)
        return sample

    def generator_average(self, generator: nn.Module) -> GeneratorAverage | None:
        """The averaged generator a trick keeps (EMA), or None; at most one trick keeps one."""
        averages = [a for trick in self._ordered() if (a := trick.generator_average(generator)) is not None]
        return averages[0] if averages else None

    def tags(self) -> dict[str, str]:
        """Tags a run carries because of its tricks (e.g. ``generator=ema``)."""
        tags: dict[str, str] = {}
        for trick in self.tricks:
            tags.update(trick.tags())
        return tags

    def input_transforms(self, total_steps: int) -> list[InputTransform]:
        """Changes to every image D sees (each has a ``step`` the loop keeps current)."""
        return [t for trick in self._ordered() if (t := trick.input_transform(total_steps)) is not None]


def stabilize_tag(stabilize: Mapping[str, Any] | None) -> str:
    """The combination's label (``smooth+noisy``, ``none``) for tags and run names."""
    return TrickSet(stabilize).tag()


__all__ = ["GeneratorAverage", "GeneratorRegularizer", "InputTransform", "NONE", "REGISTRY", "Regularizer", "TargetMaker", "Trick", "TrickSet",
           "stabilize_tag", "trick_names"]
