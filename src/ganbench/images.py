"""Generator outputs as images: a batch laid out as one grayscale sample grid (torchvision's ``make_grid``).

Apart from ``ganbench.plotting`` so that what only draws figures (the report and its CLI) starts without
torch and torchvision: 9.2 s of start-up with them, 3.8 s without (benchmarks/startup.py, 2-core Xeon).
"""

from __future__ import annotations

import torch
from PIL import Image
from torch import Tensor
from torchvision.utils import make_grid


def sample_grid(images: Tensor, nrow: int) -> Image.Image:
    """A grid of generator outputs in [-1, 1] (N, 1, S, S) as an 8-bit grayscale PIL image."""
    grid = make_grid(images.detach().float().cpu(), nrow=nrow, padding=2, normalize=True, value_range=(-1, 1), pad_value=0.5)
    array = (grid[0].clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    return Image.fromarray(array, mode="L")
