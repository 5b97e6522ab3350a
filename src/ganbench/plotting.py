"""ganbench's figures: loss curves, the training animation, and PNG export (sample grids: ``ganbench.images``).

matplotlib is switched to its file-only Agg backend here, once, before pyplot is first imported,
so figures render the same on a laptop, a headless server and CI.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from PIL import Image  # noqa: E402

__all__ = ["Figure", "animate", "figure_png", "loss_curves", "moving_average", "plt"]


def animate(frames: Sequence[Image.Image], duration_ms: int = 400) -> bytes:
    """The frames as an animated GIF (seeds S1 and S3 show training this way)."""
    buf = io.BytesIO()
    first, *rest = [f.convert("P") for f in frames]
    first.save(buf, format="GIF", save_all=True, append_images=rest, duration=duration_ms, loop=0)
    return buf.getvalue()


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """A figure as PNG bytes (no timestamp metadata, so the same figure gives the same bytes); closes it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def moving_average(values: Sequence[float], window: int) -> np.ndarray:
    """Trailing mean over ``window`` values; the first ``window - 1`` points average what exists so far."""
    v = np.asarray(values, dtype=float)
    if window <= 1 or v.size == 0:
        return v
    sums = np.cumsum(v)
    out = sums.copy()
    out[window:] = sums[window:] - sums[:-window]
    counts = np.minimum(np.arange(1, v.size + 1), window)
    return out / counts


def loss_curves(history: Mapping[str, Sequence[float]], steps: Sequence[int], title: str = "") -> Figure:
    """D and G losses (and D's outputs on real / fake) against the generator step, smoothed over ~1% of the steps."""
    fig = Figure(figsize=(9, 3.5), constrained_layout=True)
    ax_loss, ax_out = fig.subplots(1, 2)
    for ax, keys, name in ((ax_loss, ("d_loss", "g_loss"), "losses"), (ax_out, ("d_real", "d_fake"), "D(x) and D(G(z))")):
        for key in keys:
            if key in history:
                values = history[key]
                ax.plot(steps, moving_average(values, max(1, len(values) // 100)), label=key, linewidth=1)
        ax.set_xlabel("generator step")
        ax.set_title(name)
        if ax.lines:
            ax.legend()
    if title:
        fig.suptitle(title)
    return fig
