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


def copied_statistics_too_short(model: Mapping[str, Any], decay: float) -> bool:
    """Whether G's running BatchNorm statistics, which the average copies, average fewer than half the steps the
    EMA of its weights does (about 1 / momentum batches against 1 / (1 - decay) updates).

    HODA.md's EMA row (momentum 0.1, decay 0.999: 10 batches against 1,000) scored 32.0 fid_clf with the copies and 11.7
    re-estimated; fast_hoda (0.01 and 0.995) scored the same with either (benchmarks/RESULTS.md, 2026-12-07 evening).
    """
    momentum = float((model.get("generator") or {}).get("bn_momentum", 0.1))  # PyTorch's default where unset
    return momentum > 2 * (1 - decay) + 1e-9  # the tolerance keeps 0.01 against 2 * (1 - 0.995) on the quiet side


class EMATrick(Trick):
    name = "ema"

    def problems(self) -> list[str]:
        s, p = self.settings, []
        number_in(p, self.key("decay"), s.get("decay"), 0, 1, high_open=True)
        int_at_least(p, self.key("start"), s.get("start"), 0)
        return p

    def advice(self, config: Mapping[str, Any]) -> list[str]:
        ev = config.get("eval") or {}
        scored_with_copies = ev.get("enabled", True) is True and ev.get("bn_mode", "eval") == "eval"
        if scored_with_copies and copied_statistics_too_short(config["model"], float(self.settings["decay"])):
            return ["stabilize=ema with eval.bn_mode=eval scores the average with BatchNorm statistics copied from G "
                    "(when G has BatchNorm), which benchmarks/HODA.md measured far worse at decay 0.999 (fid_clf 32.0 "
                    "against 11.7 re-estimated); consider eval.bn_mode=standing, or model.generator.bn_momentum at "
                    "most 2 * (1 - stabilize.ema.decay)"]
        return []

    def tags(self) -> dict[str, str]:
        return {"generator": f"ema(decay={self.settings['decay']})"}

    def generator_average(self, generator: nn.Module) -> GeneratorEMA:
        return GeneratorEMA(generator, float(self.settings["decay"]), int(self.settings["start"]))
