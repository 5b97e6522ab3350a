"""What a stabilisation trick is: its settings, its checks, and the parts of training it changes.

A trick declares its effects by overriding the hooks below; the trainer's builder applies every
selected trick through them (``TrickSet``), so no other module reads a trick by name. The hooks:

* ``targets(real, fake, generator)``: D's real and fake targets for a batch (label tricks);
* ``discriminator(d)``: D's layers (spectral norm, dropout);
* ``learning_rates(d_lr, g_lr)``: the optimisers' rates (TTUR);
* ``input_transform(total_steps)``: a function applied to every image D sees (instance noise, DiffAugment);
* ``regularizer()``: a term added to D's loss (R1, LeCam, consistency regularisation); one that reads the
  real batch only says so (``real_only_regularizer``);
* ``generator_average(generator)``: a running average of G's weights, used for sampling (EMA);
* ``generator_regularizer()``: a term added to G's loss, given the noise and the fakes (mode seeking);
* ``label_sampler(sample)``: how the fakes' labels are drawn (mode seeking's same-label pairs).

Its checks: ``problems()`` of its own settings, ``fit_problems(config)`` of the rest of the run's config, and
``advice(config)``, the warnings of a valid but doubtful combination; ``ganbench/validate.py`` asks every trick.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ganbench.losses import GANLoss

REGISTRY: dict[str, type["Trick"]] = {}


class Trick:
    """One stabilisation trick. Subclasses set ``name`` (their ``conf/stabilize/<name>.yaml``) and override hooks."""

    name: ClassVar[str]
    conflicts: ClassVar[dict[str, str]] = {}  # trick -> why the two cannot be combined
    stage: ClassVar[int] = 0  # order among tricks of one kind: smoothing, jitter, flips; dropout before spectral norm
    # Its regularizer reads the real batch only (R1), so D updates that take the real and the fake batch in
    # separate steps (train.d_update=separate) add it to the real step; any other regularizer refuses that mode.
    real_only_regularizer: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        REGISTRY[cls.name] = cls

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.settings = dict(settings)

    def key(self, name: str) -> str:
        """The dotted config key of one of this trick's settings, for messages."""
        return f"stabilize.{self.name}.{name}"

    def problems(self) -> list[str]:
        """One line per invalid setting; [] when the trick can run."""
        return []

    def fit_problems(self, config: Mapping[str, Any]) -> list[str]:
        """One line per way the rest of the run's config (plain dicts: ``model``, ``train``, ``eval``, ...) rules the
        trick out; asked only when its own settings are valid."""
        return []

    def advice(self, config: Mapping[str, Any]) -> list[str]:
        """Valid but doubtful combinations with the rest of the config, one warning line each."""
        return []

    # -- effects (default: none)
    changes_targets: ClassVar[bool] = False

    def targets(self, real: Tensor, fake: Tensor, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        return real, fake

    def discriminator(self, d: nn.Module) -> nn.Module:
        return d

    def learning_rates(self, d_lr: float, g_lr: float) -> tuple[float, float]:
        return d_lr, g_lr

    def input_transform(self, total_steps: int) -> "InputTransform | None":
        return None

    def tags(self) -> dict[str, str]:
        """Tags the run carries because of this trick."""
        return {}

    def regularizer(self) -> "Regularizer | None":
        return None

    def generator_average(self, generator: nn.Module) -> "GeneratorAverage | None":
        return None

    def generator_regularizer(self) -> "GeneratorRegularizer | None":
        return None

    def label_sampler(self, sample: Callable[[int], Tensor]) -> Callable[[int], Tensor]:
        return sample


class InputTransform:
    """A change to every image D sees that may depend on the generator step (``step`` is set by the loop)."""

    step: int = 0

    def __call__(self, x: Tensor) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError


# D as it sees images: ``(images, labels) -> (logits, class logits or None)``, its input transforms applied.
SeenD = Callable[[Tensor, Tensor], tuple[Tensor, Tensor | None]]


class Regularizer:
    """A term of D's loss, given D, the batch and D's outputs on it (logits of the perturbed real and fake images).

    ``discriminator`` is D behind its input transforms (``GANStep.sees``): a term that runs D again (R1, bCR) shows it
    images the way the loss does, e.g. DiffAugmented.

    One that keeps state across D updates (LeCam's anchors, lazy R1's counter) returns it from ``state_dict``,
    which resume checkpoints save, so a resumed run computes the same terms as an uninterrupted one.
    """

    def __call__(self, discriminator: SeenD, real: Tensor, fake: Tensor, labels: Tensor, fake_labels: Tensor,
                 real_logits: Tensor, fake_logits: Tensor) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """What the term carries from one D update to the next; none by default."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Take up the state ``state_dict`` returned (a stateless term has nothing to load)."""


class GeneratorRegularizer:
    """A term of G's loss, given the noise a G update's fakes were drawn from, the fakes and their labels."""

    def __call__(self, z: Tensor, fake: Tensor, labels: Tensor) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError


class GeneratorAverage:
    """An averaged copy of G (``module``), updated after every G update; what samples and evaluations use."""

    module: nn.Module

    def update(self, generator: nn.Module) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:  # pragma: no cover - interface
        raise NotImplementedError

    def load_state_dict(self, state: Mapping[str, Any]) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class TargetMaker:
    """Builds D's real and fake targets for a batch: the loss's plain targets, then each label trick in turn."""

    def __init__(self, loss: GANLoss, tricks: list[Trick], generator: torch.Generator | None = None) -> None:
        self.loss, self.generator = loss, generator
        self.tricks = sorted((t for t in tricks if t.changes_targets), key=lambda t: t.stage)

    def __call__(self, n: int, device: torch.device) -> tuple[Tensor, Tensor]:
        real = torch.full((n,), self.loss.real_target, device=device)
        fake = torch.full((n,), self.loss.fake_target, device=device)
        for trick in self.tricks:
            real, fake = trick.targets(real, fake, self.generator)
        return real, fake

    def generator_targets(self, n: int, device: torch.device) -> Tensor:
        """G always aims for the plain real target: the tricks regularise D only."""
        return torch.full((n,), self.loss.real_target, device=device)
