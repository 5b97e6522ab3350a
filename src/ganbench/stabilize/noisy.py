"""``noisy``: noisy labels, a fraction ``flip_prob`` of D's real and of its fake targets swapped each step."""

from __future__ import annotations

import torch
from torch import Tensor

from ganbench.checks import number_in
from ganbench.stabilize.base import Trick


def flip_targets(real: Tensor, fake: Tensor, flip_prob: float, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
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


class Noisy(Trick):
    name = "noisy"
    changes_targets = True
    stage = 30  # after smoothing and jitter: a flipped target is the other class's (smoothed) value

    def problems(self) -> list[str]:
        p: list[str] = []
        number_in(p, self.key("flip_prob"), self.settings.get("flip_prob"), 0, 1)
        return p

    def targets(self, real: Tensor, fake: Tensor, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        flip_prob = float(self.settings["flip_prob"])
        return flip_targets(real, fake, flip_prob, generator) if flip_prob > 0 else (real, fake)
