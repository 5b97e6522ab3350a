"""``lecam``: LeCam regularisation (Tseng et al. 2021) of D's outputs toward the moving averages of the other side's.

``R = E[relu(D(x) - a_fake)^2] + E[relu(a_real - D(G(z)))^2]``, with ``a_real``, ``a_fake`` exponential moving
averages of D's mean output on real and fake images (the authors' code; the paper writes it without the relu):
it keeps D's outputs from drifting apart when data is scarce.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from ganbench.checks import is_number, number_in
from ganbench.stabilize.base import Regularizer, Trick


class LeCam(Regularizer):
    """``weight`` x the LeCam term; the anchors take this batch's means first, as in the authors' code."""

    def __init__(self, weight: float, decay: float) -> None:
        self.weight, self.decay = weight, decay
        self.real_anchor: float | None = None
        self.fake_anchor: float | None = None

    def __call__(self, discriminator, real, fake, labels, fake_labels, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        real_mean, fake_mean = real_logits.detach().float().mean().item(), fake_logits.detach().float().mean().item()
        if self.real_anchor is None or self.fake_anchor is None:
            self.real_anchor, self.fake_anchor = real_mean, fake_mean
        else:
            self.real_anchor = self.decay * self.real_anchor + (1 - self.decay) * real_mean
            self.fake_anchor = self.decay * self.fake_anchor + (1 - self.decay) * fake_mean
        term = torch.mean(torch.relu(real_logits - self.fake_anchor) ** 2) + torch.mean(torch.relu(self.real_anchor - fake_logits) ** 2)
        return self.weight * term

    def state_dict(self) -> dict[str, Any]:
        """The anchors: a resumed run goes on averaging from them instead of restarting at its first batch."""
        return {"real_anchor": self.real_anchor, "fake_anchor": self.fake_anchor}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.real_anchor, self.fake_anchor = state["real_anchor"], state["fake_anchor"]


class LeCamTrick(Trick):
    name = "lecam"

    def problems(self) -> list[str]:
        s, p = self.settings, []
        if not is_number(s.get("weight")) or s["weight"] <= 0:
            p.append(f"{self.key('weight')}={s.get('weight')!r} is invalid: it must be a number > 0")
        number_in(p, self.key("decay"), s.get("decay"), 0, 1, high_open=True)
        return p

    def regularizer(self) -> LeCam:
        return LeCam(float(self.settings["weight"]), float(self.settings["decay"]))
