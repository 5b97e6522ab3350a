"""The evaluation's figures: the confusion matrix of conditional samples, the class histogram of unconditional ones."""

from __future__ import annotations

import numpy as np

from ganbench.plotting import Figure


def confusion_figure(matrix: np.ndarray, title: str = "") -> Figure:
    """The confusion matrix as a heat map, row-normalised, with counts in the cells."""
    matrix = np.asarray(matrix)
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros(matrix.shape, dtype=np.float64), where=rows > 0)
    n = matrix.shape[0]
    fig = Figure(figsize=(6, 5.2), constrained_layout=True)
    ax = fig.subplots()
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            if matrix[i, j]:
                ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=7, color="white" if share[i, j] > 0.5 else "black")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("requested class")
    ax.set_title(title or "classifier on generated images")
    fig.colorbar(image, ax=ax, label="share of requested class")
    return fig


def histogram_figure(gen_counts: np.ndarray, real_counts: np.ndarray, title: str = "") -> Figure:
    """Predicted class shares of the samples beside the real class shares."""
    gen = np.asarray(gen_counts, dtype=np.float64)
    real = np.asarray(real_counts, dtype=np.float64)
    x = np.arange(len(gen))
    fig = Figure(figsize=(6, 3.2), constrained_layout=True)
    ax = fig.subplots()
    ax.bar(x - 0.2, gen / max(gen.sum(), 1), width=0.4, label="generated (predicted class)")
    ax.bar(x + 0.2, real / max(real.sum(), 1), width=0.4, label="real")
    ax.set_xticks(x)
    ax.set_xlabel("class")
    ax.set_ylabel("share")
    ax.set_title(title or "class histogram")
    ax.legend(fontsize=8)
    return fig
