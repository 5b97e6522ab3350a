"""How a conditional GAN is told the class: conditional BatchNorm in G, the projection head in D.

These are the conditioning of SNGAN and BigGAN (Miyato & Koyama 2018; Brock et al. 2019), beside
today's concatenation (``cgan``, ``cgan_conv``) and ACGAN's class head (``acgan``).
"""

from __future__ import annotations

from torch import Tensor, nn

CONDITIONINGS = ("none", "concat", "projection", "cbn", "acgan")


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm without its own affine; a per-class scale and shift instead (initialised to 1 and 0)."""

    def __init__(self, num_features: int, num_classes: int, momentum: float = 0.1) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(num_features, affine=False, momentum=momentum)
        self.scale = nn.Embedding(num_classes, num_features)
        self.shift = nn.Embedding(num_classes, num_features)
        nn.init.ones_(self.scale.weight)
        nn.init.zeros_(self.shift.weight)

    def forward(self, x: Tensor, labels: Tensor) -> Tensor:
        return self.norm(x) * self.scale(labels)[:, :, None, None] + self.shift(labels)[:, :, None, None]


class Projection(nn.Module):
    """The projection discriminator's class term: ``<embed(y), h>``, added to D's unconditional score."""

    def __init__(self, features: int, num_classes: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(num_classes, features)
        nn.init.xavier_uniform_(self.embed.weight)

    def forward(self, h: Tensor, labels: Tensor) -> Tensor:
        return (self.embed(labels) * h).sum(dim=1)


def check_conditioning(conditioning: str) -> None:
    if conditioning not in CONDITIONINGS:
        raise ValueError(f"model.conditioning={conditioning!r} is invalid: choose {', '.join(CONDITIONINGS)}")
