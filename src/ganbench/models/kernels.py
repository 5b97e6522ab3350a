"""Convolutions that oneDNN runs far below the matmul rate, rewritten as a matmul and a fold: the same sums.

Seed S3's (and S0c's) generator ends in a 7x7 conv from 128 channels to one: 10% of its FLOPs, but oneDNN
runs a one-output-channel conv and its backward at about 8 GFLOP/s here, against about 90 for the
128-channel transposed convs, so it took as long as the largest layer. As a (pixel x channel) @ (channel x
tap) matmul followed by ``F.fold`` (which adds each pixel's 49 tap products into the output at their offsets)
it runs 2-3x faster, forward and backward, with autograd's own gradients.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def one_map_conv2d(x: Tensor, weight: Tensor, bias: Tensor | None, padding: tuple[int, int]) -> Tensor:
    """``F.conv2d(x, weight, bias, 1, padding)`` for a (1, C, kh, kw) weight and 'same' padding ((k - 1) / 2).

    Equal to the conv up to float rounding (the sums are taken in another order).
    """
    n, c, h, w = x.shape
    kh, kw = weight.shape[-2:]
    same = kh % 2 == kw % 2 == 1 and padding == ((kh - 1) // 2, (kw - 1) // 2)
    if weight.size(0) != 1 or weight.size(1) != c or not same:
        raise ValueError(f"one_map_conv2d needs a (1, {c}, odd, odd) weight and 'same' padding, "
                         f"got {tuple(weight.shape)} and {padding}")
    # fold puts tap (a, b) of pixel p at p + (a, b) - padding; a correlation needs p - (a, b) + padding: mirror taps.
    taps = weight.reshape(c, kh * kw).flip(-1)
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        cols = (x.permute(0, 2, 3, 1).reshape(n, h * w, c) @ taps).transpose(1, 2)  # (N, HW, C) is a free view
    else:
        cols = taps.t() @ x.reshape(n, c, h * w)  # (k*k, C) @ (N, C, HW): no copy of x
    out = F.fold(cols, (h, w), (kh, kw), padding=padding)
    return out if bias is None else out + bias.view(1, 1, 1, 1)
