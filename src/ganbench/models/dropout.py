"""Dropout whose random mask does not depend on the tensor's memory format.

PyTorch's own CPU generator (every CPU but Intel's, where MKL's draws the mask) fills a dropout mask in the
input's memory order: the same seed gives an NCHW map and its channels_last (NHWC) copy different masks, so
``train.channels_last=true`` would train another run, not the same run faster.
``Dropout`` draws the mask in the logical (N, C, H, W) order, as stock dropout does for a contiguous map, and lays
it out like the input before multiplying: with channels_last the run differs from the NCHW one by float rounding
only (the convolutions sum in another order), which ``tests/models/test_dropout.py`` checks on seed S3's step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def layout_free_dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """``F.dropout(x, p, training)`` with the mask drawn in logical order whatever ``x``'s memory format."""
    if not training or p in (0.0, 1.0) or x.is_contiguous():
        return F.dropout(x, p, training)  # stock dropout: its mask is already in logical order (or none is drawn)
    # As ATen's dropout: keep with probability 1 - p, scale kept values by 1 / (1 - p); then x's own layout.
    noise = x.new_empty(x.shape).bernoulli_(1 - p).div_(1 - p)
    return x * torch.empty_like(x).copy_(noise)  # empty_like keeps x's layout: a same-layout multiply


class Dropout(nn.Dropout):
    """``nn.Dropout`` with ``layout_free_dropout``'s mask (same parameters, state and repr)."""

    def forward(self, x: Tensor) -> Tensor:
        if self.inplace:
            return super().forward(x)
        return layout_free_dropout(x, self.p, self.training)
