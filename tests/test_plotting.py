"""Figures and images: the moving average against a direct computation, PNG export, sample grids."""

import numpy as np
import torch

from ganbench.plotting import figure_png, loss_curves, moving_average, sample_grid


def test_moving_average_is_the_trailing_mean_of_what_exists_so_far():
    values = [1.0, 3.0, 5.0, 7.0, 100.0]
    expected = [np.mean(values[max(0, i - 2) : i + 1]) for i in range(len(values))]
    assert np.allclose(moving_average(values, 3), expected)
    assert np.array_equal(moving_average(values, 1), np.array(values))


def test_figures_export_as_png_and_grids_are_8_bit():
    fig = loss_curves({"d_loss": [1.0, 0.5, 0.2], "g_loss": [2.0, 1.0, 0.5]}, [1, 2, 3], "run")
    assert figure_png(fig).startswith(b"\x89PNG")
    grid = sample_grid(torch.full((4, 1, 8, 8), -1.0), nrow=2)
    assert grid.mode == "L" and grid.size == (2 * 10 + 2, 2 * 10 + 2)
