"""Sample grids: a batch of generator outputs as one grayscale image (torchvision's ``make_grid``).

Apart from ``ganbench.plotting`` so that what only draws figures (the report and its CLI) starts without
importing torch and torchvision, two to four seconds of every start-up on 2 CPU cores.
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
