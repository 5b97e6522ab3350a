"""What every generator and discriminator shares.

Generators map ``(z, labels)`` to images in [-1, 1] of shape (N, 1, S, S).
Discriminators map ``(images, labels)`` to ``(logits, class_logits)``: one raw
score per image (no sigmoid; the loss decides how to read it) and, for ACGAN,
class logits, else ``None``. Unconditional models ignore ``labels``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
import torch.nn.functional as F

DOutput = tuple[Tensor, Tensor | None]


def one_hot(labels: Tensor, num_classes: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """Float one-hot codes of ``labels``."""
    return F.one_hot(labels, num_classes).to(dtype)


def label_channels(labels: Tensor, num_classes: int, size: int, dtype: torch.dtype) -> Tensor:
    """The one-hot label broadcast to ``num_classes`` constant image channels (seed S3's D input)."""
    return one_hot(labels, num_classes, dtype)[:, :, None, None].expand(-1, -1, size, size)


def keras_param_count(module: nn.Module, exclude: tuple[str, ...] = ()) -> int:
    """Parameters counted the way Keras' model.summary() does: weights plus BatchNorm moving statistics.

    ``exclude`` drops submodules by attribute name (e.g. an ACGAN class head the report's table leaves out).
    """
    total = 0
    for name, p in module.named_parameters():
        if not name.split(".")[0] in exclude:
            total += p.numel()
    for name, m in module.named_modules():
        if name.split(".")[0] in exclude:
            continue
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
            total += m.running_mean.numel() + m.running_var.numel()
    return total


class Maxout(nn.Module):
    """Maxout units (Goodfellow et al. 2013): the max over ``pieces`` linear pieces per unit."""

    def __init__(self, in_features: int, units: int, pieces: int):
        super().__init__()
        self.units, self.pieces = units, pieces
        self.linear = nn.Linear(in_features, units * pieces)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x).view(x.size(0), self.units, self.pieces).amax(dim=-1)
