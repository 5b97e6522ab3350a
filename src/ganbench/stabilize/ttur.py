"""``ttur``: the two time-scale update rule (Heusel et al. 2017), separate learning rates for D and G."""

from __future__ import annotations

from ganbench.checks import is_number
from ganbench.stabilize.base import Trick


class TTUR(Trick):
    name = "ttur"

    def problems(self) -> list[str]:
        p = []
        for key in ("d_lr", "g_lr"):
            value = self.settings.get(key)
            if not is_number(value) or value <= 0:
                p.append(f"{self.key(key)}={value!r} is invalid: a learning rate must be a number > 0")
        return p

    def learning_rates(self, d_lr: float, g_lr: float) -> tuple[float, float]:
        return float(self.settings["d_lr"]), float(self.settings["g_lr"])
