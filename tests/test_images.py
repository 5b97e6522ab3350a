"""Sample grids: generator outputs in [-1, 1] laid out as one 8-bit image."""

import numpy as np
import torch

from ganbench.images import sample_grid


def test_a_grid_maps_minus_one_to_black_one_to_white_and_pads_in_grey():
    images = torch.stack([torch.full((1, 8, 8), v) for v in (-1.0, 1.0, 0.0, -1.0)])
    grid = np.asarray(sample_grid(images, nrow=2))
    assert grid.dtype == np.uint8 and grid.shape == (2 * 10 + 2, 2 * 10 + 2)
    cells = [grid[2 + 10 * r : 10 + 10 * r, 2 + 10 * c : 10 + 10 * c] for r in range(2) for c in range(2)]
    assert [int(np.unique(cell).item()) for cell in cells] == [0, 255, 128, 0]  # 0.0 -> 127.5, rounded
    assert set(np.unique(grid[:2])) == {128} and set(np.unique(grid[:, :2])) == {128}  # the padding, 0.5 grey
