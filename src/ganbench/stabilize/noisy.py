"""``noisy``: noisy labels, up to ``int(flip_prob * batch)`` of D's real and of its fake targets flipped an update."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from ganbench.checks import is_int, number_in
from ganbench.stabilize.base import Trick


def flip_targets(real: Tensor, fake: Tensor, flip_prob: float, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
    """Give ``int(flip_prob * n)`` random positions of each batch the opposite class's target, as seed S0b's code.

    The report's ``noisy_labels`` truncates the count (1 of 32 at 0.05) and draws the positions with
    replacement (``numpy.random.choice``); a position drawn twice is flipped once, so at most that many flip.
    """
    n = real.numel()
    k = int(flip_prob * n)
    if k == 0:
        return real, fake
    real_idx = torch.randint(0, n, (k,), device=real.device, generator=generator)
    fake_idx = torch.randint(0, n, (k,), device=fake.device, generator=generator)
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

    def fit_problems(self, config: Mapping[str, Any]) -> list[str]:
        flip_prob, batch = self.settings["flip_prob"], config["train"].get("batch_size")
        if is_int(batch) and 0 < flip_prob * batch < 1:
            # Seed S0b's rule flips int(flip_prob * batch) targets: none at all here, yet the run would be tagged noisy.
            return [f"{self.key('flip_prob')}={flip_prob} flips int({flip_prob} x {batch}) = 0 targets of a batch of "
                    f"train.batch_size={batch}: raise it to at least {1 / batch:.3g}, raise the batch size, or drop the trick"]
        return []

    def targets(self, real: Tensor, fake: Tensor, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        flip_prob = float(self.settings["flip_prob"])
        return flip_targets(real, fake, flip_prob, generator) if flip_prob > 0 else (real, fake)
