"""Figures: the moving average against a direct computation, PNG export."""

import numpy as np

from ganbench.plotting import figure_png, loss_curves, moving_average


def test_moving_average_is_the_trailing_mean_of_what_exists_so_far():
    values = [1.0, 3.0, 5.0, 7.0, 100.0]
    expected = [np.mean(values[max(0, i - 2) : i + 1]) for i in range(len(values))]
    assert np.allclose(moving_average(values, 3), expected)
    assert np.array_equal(moving_average(values, 1), np.array(values))


def test_figures_export_as_png():
    fig = loss_curves({"d_loss": [1.0, 0.5, 0.2], "g_loss": [2.0, 1.0, 0.5]}, [1, 2, 3], "run")
    assert figure_png(fig).startswith(b"\x89PNG")
