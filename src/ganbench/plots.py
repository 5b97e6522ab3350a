"""Images and plots a run logs: sample grids, their animation across training, loss curves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torchvision.utils import make_grid


def sample_grid(images: Tensor, nrow: int) -> Image.Image:
    """A grid of generator outputs in [-1, 1] (N, 1, S, S) as an 8-bit grayscale PIL image."""
    grid = make_grid(images.detach().float().cpu(), nrow=nrow, padding=2, normalize=True, value_range=(-1, 1), pad_value=0.5)
    array = (grid[0].clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    return Image.fromarray(array, mode="L")


def animate(frames: Sequence[Image.Image], duration_ms: int = 400) -> bytes:
    """The frames as an animated GIF (seeds S1 and S3 show training this way)."""
    import io

    buf = io.BytesIO()
    first, *rest = [f.convert("P") for f in frames]
    first.save(buf, format="GIF", save_all=True, append_images=rest, duration=duration_ms, loop=0)
    return buf.getvalue()


def loss_curves(history: Mapping[str, Sequence[float]], steps: Sequence[int], title: str = "") -> "matplotlib.figure.Figure":
    """D and G losses (and D's outputs on real / fake) against the generator step."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.5), constrained_layout=True)
    ax_loss, ax_out = fig.subplots(1, 2)
    for key in ("d_loss", "g_loss"):
        if key in history:
            ax_loss.plot(steps, _smooth(history[key]), label=key, linewidth=1)
    ax_loss.set_xlabel("generator step")
    ax_loss.set_title("losses")
    ax_loss.legend()
    for key in ("d_real", "d_fake"):
        if key in history:
            ax_out.plot(steps, _smooth(history[key]), label=key, linewidth=1)
    ax_out.set_xlabel("generator step")
    ax_out.set_title("D(x) and D(G(z))")
    ax_out.legend()
    if title:
        fig.suptitle(title)
    return fig


def _smooth(values: Sequence[float], window: int = 0) -> np.ndarray:
    """A moving average so that curves of thousands of steps stay readable."""
    v = np.asarray(values, dtype=float)
    window = window or max(1, len(v) // 100)
    if window <= 1:
        return v
    kernel = np.ones(window) / window
    padded = np.concatenate([np.full(window - 1, v[0]), v])
    return np.convolve(padded, kernel, mode="valid")
