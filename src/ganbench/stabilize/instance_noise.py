"""``instance_noise``: N(0, std^2) added to every image D sees, std annealed linearly to 0 (Sonderby et al. 2016)."""

from __future__ import annotations

import torch
from torch import Tensor

from ganbench.checks import is_int, is_number
from ganbench.stabilize.base import InputTransform, Trick


class InstanceNoise(InputTransform):
    """Adds N(0, std^2) to D's inputs, std annealed linearly to 0 over ``anneal_steps`` generator steps."""

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


class InstanceNoiseTrick(Trick):
    name = "instance_noise"
    stage = 50  # after DiffAugment: the noise lands on the image D finally sees

    def problems(self) -> list[str]:
        s, p = self.settings, []
        if not is_number(s.get("std")) or s["std"] < 0:
            p.append(f"{self.key('std')}={s.get('std')!r} is invalid: it must be a number >= 0")
        steps = s.get("anneal_steps")
        if steps is not None and (not is_int(steps) or steps < 1):
            p.append(f"{self.key('anneal_steps')}={steps!r} is invalid: it must be an integer >= 1 or null")
        return p

    def input_transform(self, total_steps: int) -> InstanceNoise:
        return InstanceNoise(float(self.settings["std"]), int(self.settings["anneal_steps"] or total_steps))
