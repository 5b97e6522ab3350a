"""``smooth``: one-sided label smoothing, the real target's magnitude becomes ``real_target`` (0.9)."""

from __future__ import annotations

import torch
from torch import Tensor

from ganbench.checks import number_in
from ganbench.stabilize.base import Trick


def smooth_targets(targets: Tensor, real_target: float) -> Tensor:
    """One-sided smoothing: scale the (positive) real targets to magnitude ``real_target``."""
    return targets * real_target


class Smooth(Trick):
    name = "smooth"
    conflicts = {"smooth_range": "both set the real target"}
    changes_targets = True
    stage = 10

    def problems(self) -> list[str]:
        p: list[str] = []
        number_in(p, self.key("real_target"), self.settings.get("real_target"), 0, 1, low_open=True)
        return p

    def targets(self, real: Tensor, fake: Tensor, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        return smooth_targets(real, float(self.settings["real_target"])), fake
