"""``mode_seeking``: the mode-seeking term of MSGAN (Mao et al. 2019), a G regulariser against mode collapse.

The fakes of a step come in pairs that share a label and differ in their noise: the first half of the batch
and the second (``paired_labels``). G's loss adds ``weight / (d_I / d_z + eps)``, with ``d_I`` the mean absolute
difference between the two halves' images and ``d_z`` that between their noise vectors (the authors' code takes
the ratio of the two means, not a mean of per-pair ratios): G is paid for drawing different digits from
different noise, which is what a conditional GAN tends to stop doing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from ganbench.checks import is_number
from ganbench.stabilize.base import GeneratorRegularizer, Trick


def paired_labels(sample: Callable[[int], Tensor]) -> Callable[[int], Tensor]:
    """A label sampler whose batch of n is ceil(n/2) draws, then the same draws again (cut to n)."""

    def draw(n: int) -> Tensor:
        return sample((n + 1) // 2).repeat(2)[:n]

    return draw


def mode_seeking_term(z: Tensor, fake: Tensor, eps: float) -> Tensor:
    """``1 / (d_I / d_z + eps)`` over the pairs (i, i + ceil(n/2)) of a batch of n fakes and their noise."""
    half, n = (fake.size(0) + 1) // 2, fake.size(0)
    pairs = n - half
    if pairs == 0:
        return fake.new_zeros((), dtype=torch.float32)
    d_image = (fake[:pairs].float() - fake[half:].float()).abs().mean()
    d_noise = (z[:pairs].float() - z[half:].float()).abs().mean()
    return 1.0 / (d_image / d_noise + eps)


class ModeSeeking(GeneratorRegularizer):
    """``weight`` x the mode-seeking term of a G update's fakes."""

    def __init__(self, weight: float, eps: float) -> None:
        self.weight, self.eps = weight, eps

    def __call__(self, z: Tensor, fake: Tensor, labels: Tensor) -> Tensor:
        return self.weight * mode_seeking_term(z, fake, self.eps)


class ModeSeekingTrick(Trick):
    name = "mode_seeking"

    def problems(self) -> list[str]:
        s, p = self.settings, []
        for key in ("weight", "eps"):
            if not is_number(s.get(key)) or s[key] <= 0:
                p.append(f"{self.key(key)}={s.get(key)!r} is invalid: it must be a number > 0")
        return p

    def label_sampler(self, sample: Callable[[int], Tensor]) -> Callable[[int], Tensor]:
        return paired_labels(sample)

    def fit_problems(self, config: Mapping[str, Any]) -> list[str]:
        if config["train"].get("fake_labels") == "real":
            return ["stabilize=mode_seeking does not fit train.fake_labels=real: it draws the fakes' labels in same-label "
                    "pairs, and the real batch's labels are not paired; use train.fake_labels=uniform or drop the trick"]
        return []

    def generator_regularizer(self) -> ModeSeeking:
        return ModeSeeking(float(self.settings["weight"]), float(self.settings["eps"]))
