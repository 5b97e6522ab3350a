"""``smooth_range``: seed S0's jittered targets, real ``y - 0.3 + 0.5u`` and fake moved toward the real
side by ``0.3u`` (u ~ U[0, 1]): real ~ U[0.7, 1.2], fake ~ U[0, 0.3] (probability losses) or U[-1, -0.7]."""

from __future__ import annotations

import torch
from torch import Tensor

from ganbench.checks import is_number, number_in
from ganbench.stabilize.base import Trick


def smooth_range_targets(
    real: Tensor, fake: Tensor, real_low: float, real_high: float, fake_high: float, generator: torch.Generator | None
) -> tuple[Tensor, Tensor]:
    """Seed S0's jitter: real 1 -> U[real_low, real_high], fake moved toward the real side by U[0, fake_high]."""
    u_real = torch.rand(real.shape, device=real.device, generator=generator)
    u_fake = torch.rand(fake.shape, device=fake.device, generator=generator)
    real = real - (1.0 - real_low) + (real_high - real_low) * u_real
    fake = fake + fake_high * u_fake
    return real, fake


class SmoothRange(Trick):
    name = "smooth_range"
    conflicts = {"smooth": "both set the real target"}
    changes_targets = True
    stage = 20

    def problems(self) -> list[str]:
        s, p = self.settings, []
        number_in(p, self.key("real_low"), s.get("real_low"), 0, 1)
        number_in(p, self.key("fake_high"), s.get("fake_high"), 0, 1)
        if is_number(s.get("real_high")) and is_number(s.get("real_low")) and s["real_high"] < s["real_low"]:
            p.append(f"{self.key('real_high')}={s['real_high']} is below real_low={s['real_low']}: swap them")
        return p

    def targets(self, real: Tensor, fake: Tensor, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        s = self.settings
        return smooth_range_targets(real, fake, float(s["real_low"]), float(s["real_high"]), float(s["fake_high"]), generator)
