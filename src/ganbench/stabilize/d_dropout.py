"""``d_dropout``: Dropout(p) after every activation of D."""

from __future__ import annotations

from torch import nn

from ganbench.checks import number_in
from ganbench.models.dropout import Dropout
from ganbench.stabilize.base import Trick


def add_dropout(module: nn.Module, p: float) -> nn.Module:
    """Follow every LeakyReLU/ReLU of ``module`` with Dropout(p)."""
    for name, child in module.named_children():
        if isinstance(child, (nn.LeakyReLU, nn.ReLU)):
            setattr(module, name, nn.Sequential(child, Dropout(p)))
        else:
            add_dropout(child, p)
    return module


class DDropout(Trick):
    name = "d_dropout"
    stage = 10  # before spectral norm (stage 20), as it always ran

    def problems(self) -> list[str]:
        p: list[str] = []
        number_in(p, self.key("p"), self.settings.get("p"), 0, 1, high_open=True)
        return p

    def discriminator(self, d: nn.Module) -> nn.Module:
        return add_dropout(d, float(self.settings["p"]))
