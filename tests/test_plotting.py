"""Figures: the moving average against a direct computation, PNG export."""

import numpy as np

from ganbench.plotting import figure_png, loss_curves, moving_average


def test_moving_average_is_the_trailing_mean_of_what_exists_so_far():
    values = [1.0, 3.0, 5.0, 7.0, 100.0]
    expected = [np.mean(values[max(0, i - 2) : i + 1]) for i in range(len(values))]
    assert np.allclose(moving_average(values, 3), expected)
    assert np.array_equal(moving_average(values, 1), np.array(values))


def test_loss_curves_plot_the_losses_and_ds_outputs_smoothed_over_one_percent_of_the_steps():
    steps = list(range(1, 401))
    rng = np.random.default_rng(0)
    history = {key: rng.random(400).tolist() for key in ("d_loss", "g_loss", "d_real", "d_fake")}
    fig = loss_curves(history, steps, "run")
    losses, outputs = fig.axes[:2]
    for ax, keys in ((losses, ("d_loss", "g_loss")), (outputs, ("d_real", "d_fake"))):
        assert [line.get_label() for line in ax.lines] == list(keys)
        for line, key in zip(ax.lines, keys):  # 400 steps: a trailing mean over 4, computed here directly
            expected = [np.mean(history[key][max(0, i - 3) : i + 1]) for i in range(400)]
            assert np.array_equal(line.get_xdata(), steps) and np.allclose(line.get_ydata(), expected)
    assert fig.get_suptitle() == "run"


def test_figures_export_as_png():
    fig = loss_curves({"d_loss": [1.0, 0.5, 0.2], "g_loss": [2.0, 1.0, 0.5]}, [1, 2, 3], "run")
    assert [line.get_label() for line in fig.axes[0].lines] == ["d_loss", "g_loss"] and not fig.axes[1].lines
    assert figure_png(fig).startswith(b"\x89PNG")
