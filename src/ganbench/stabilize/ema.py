"""``ema``: an exponential moving average of the generator's weights (Karras et al. 2018; BigGAN, StudioGAN).

After every G update ``ema = decay * ema + (1 - decay) * weights``; before ``start`` updates it simply copies
the weights (an average of a random start is no use). BatchNorm's running statistics are copied from G, not
averaged: they describe the current weights' activations. Sample grids, evaluations and the logged model use
the EMA generator; checkpoints hold both, and a resumed run continues both.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ganbench.checks import int_at_least, number_in
from ganbench.stabilize.base import GeneratorAverage, Trick


class GeneratorEMA(GeneratorAverage):
    """The averaged copy of a generator; ``update`` after each G update."""

    def __init__(self, generator: nn.Module, decay: float, start: int) -> None:
        self.module = copy.deepcopy(generator).eval()
        self.module.requires_grad_(False)
        self.decay, self.start, self.updates = decay, start, 0

    @torch.no_grad()
    def update(self, generator: nn.Module) -> None:
        self.updates += 1
        decay = self.decay if self.updates > self.start else 0.0
        for averaged, current in zip(self.module.parameters(), generator.parameters(), strict=True):
            averaged.lerp_(current.detach(), 1.0 - decay)  # averaged = decay * averaged + (1 - decay) * current
        for averaged, current in zip(self.module.buffers(), generator.buffers(), strict=True):
            averaged.copy_(current)

    def state_dict(self) -> dict[str, Any]:
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])


class EMATrick(Trick):
    name = "ema"

    def problems(self) -> list[str]:
        s, p = self.settings, []
        number_in(p, self.key("decay"), s.get("decay"), 0, 1, high_open=True)
        int_at_least(p, self.key("start"), s.get("start"), 0)
        return p

    def tags(self) -> dict[str, str]:
        return {"generator": f"ema(decay={self.settings['decay']})"}

    def generator_average(self, generator: nn.Module) -> GeneratorEMA:
        return GeneratorEMA(generator, float(self.settings["decay"]), int(self.settings["start"]))
