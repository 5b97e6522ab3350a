"""``r1``: the zero-centred gradient penalty on real images (Mescheder et al. 2018): ``gamma/2 E[||grad_x D(x)||^2]``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ganbench.checks import int_at_least, is_number
from ganbench.stabilize.base import Regularizer, SeenD, Trick


def r1_penalty(discriminator: SeenD | nn.Module, real: Tensor, labels: Tensor, gamma: float) -> Tensor:
    """``gamma / 2`` times the mean squared norm of D's gradient at the real images (through D's input transforms
    when ``discriminator`` applies them, as StyleGAN2-ADA takes R1 through its augmentation)."""
    real = real.detach().requires_grad_(True)
    logits, _ = discriminator(real, labels)
    (grad,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
    return 0.5 * gamma * grad.pow(2).flatten(1).sum(1).mean()


class R1(Regularizer):
    """R1 every ``every`` D updates, scaled by ``every`` (lazy regularisation, as StyleGAN2)."""

    def __init__(self, gamma: float, every: int) -> None:
        self.gamma, self.every, self.calls = gamma, every, 0

    def __call__(self, discriminator, real, fake, labels, fake_labels, real_logits, fake_logits) -> Tensor | float:
        self.calls += 1
        if (self.calls - 1) % self.every:
            return 0.0
        return self.every * r1_penalty(discriminator, real, labels, self.gamma)

    def state_dict(self) -> dict[str, Any]:
        """The D updates so far: with ``every`` > 1 they say which update takes the penalty next."""
        return {"calls": self.calls}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.calls = int(state["calls"])


class R1Trick(Trick):
    name = "r1"
    real_only_regularizer = True  # the penalty is taken at the real images alone

    def problems(self) -> list[str]:
        s, p = self.settings, []
        if not is_number(s.get("gamma")) or s["gamma"] <= 0:
            p.append(f"{self.key('gamma')}={s.get('gamma')!r} is invalid: it must be a number > 0")
        int_at_least(p, self.key("every"), s.get("every"), 1)
        return p

    def regularizer(self) -> R1:
        return R1(float(self.settings["gamma"]), int(self.settings["every"]))
