"""The report's figures (PNG bytes, inlined in the HTML): the rank metric per configuration and the curves
over training. matplotlib comes through ``ganbench.plotting``, which chose its file-only backend once."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from ganbench.plotting import figure_png, moving_average, plt
from ganbench.report.leaderboard import TOP_CURVES, Leaderboard, Loaded, dataset_of
from ganbench.report.stats import ALPHA
from ganbench.report.text import fmt, short_label

Curves = Mapping[str, Mapping[str, list[tuple[int, float]]]]  # run id -> metric -> [(step, value)]


def plot_ranked(board: Leaderboard) -> bytes | None:
    """The rank metric per configuration: mean with 95% CI, every seed as a tick, real data as a line; a panel per dataset."""
    panels = [(d, [r for r in board.ranked if dataset_of(r) == d]) for d in board.datasets]
    panels = [(d, rows) for d, rows in panels if rows]
    if not panels:
        return None
    heights = [0.45 * len(rows) + 1.0 for _, rows in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, sum(heights) + 0.9), squeeze=False, layout="constrained",
                             gridspec_kw={"height_ratios": heights})
    for ax, (dataset, rows) in zip(axes[:, 0], panels):
        ys = list(range(len(rows)))[::-1]
        for y, row in zip(ys, rows):
            s = row.stats[board.metric]
            if board.is_best(row):
                color = "#2a9d8f"
            else:
                color = {True: "#e76f51", False: "#999999", None: "#8ab6d6"}[row.differs]
            if s.half_width is not None:
                ax.errorbar(s.mean, y, xerr=s.half_width, fmt="o", color=color, capsize=4, lw=2)
            else:
                ax.plot([s.mean], [y], "o", color=color)
            ax.plot(s.values, [y] * s.n, "|", color="black", ms=10, alpha=0.6)
        for ref in board.references:
            value = ref.stats[board.metric].mean
            if dataset_of(ref) == dataset and value is not None:
                ax.axvline(value, ls="--", color="#264653", lw=1, label=f"{ref.key[0]}: {fmt(value)}")
                ax.legend(fontsize=8, loc="best")
        ax.set_yticks(ys, [f"#{r.rank} {short_label(board, r)}" for r in rows], fontsize=8)
        ax.set_ylim(-0.6, len(rows) - 0.4)
        ax.grid(axis="x", alpha=0.3)
        if len(panels) > 1:
            ax.set_title(dataset, fontsize=9, loc="left")
    axes[-1, 0].set_xlabel(f"{board.metric} ({'lower' if board.lower_is_better else 'higher'} is better); mean ± 95% CI, | = one seed")
    fig.suptitle(f"{board.metric} by configuration (green: best; red: worse, Holm p<{ALPHA}; grey: not shown to differ; "
                 "blue: not testable)", fontsize=9)
    return figure_png(fig)


def mean_curve(histories: Sequence[list[tuple[int, float]]]) -> tuple[list[int], list[float]]:
    """Mean over runs at each step any run logged, smoothed with a moving average of ~2% of the steps."""
    by_step: dict[int, list[float]] = {}
    for hist in histories:
        for step, value in hist:
            if math.isfinite(value):
                by_step.setdefault(step, []).append(value)
    steps = sorted(by_step)
    means = [math.fsum(by_step[s]) / len(by_step[s]) for s in steps]
    return steps, [float(v) for v in moving_average(means, max(1, len(steps) // 50))]


def plot_curves(board: Leaderboard, curves: Curves, keys: Sequence[str], title: str) -> bytes | None:
    """One panel per key; one line per configuration (mean over its finished seeds)."""
    rows = [r for r in (board.ranked or board.rows)[:TOP_CURVES] if any(k in curves.get(run.run_id, {}) for run in r.runs for k in keys)]
    if not rows:
        return None
    fig, axes = plt.subplots(1, len(keys), figsize=(6 * len(keys), 4.2), squeeze=False, layout="constrained")
    cmap = plt.get_cmap("tab10")
    for ax, key in zip(axes[0], keys):
        for i, row in enumerate(rows):
            hists = [curves[r.run_id][key] for r in row.runs if key in curves.get(r.run_id, {})]
            steps, means = mean_curve(hists)
            if steps:
                label = f"#{row.rank} {short_label(board, row)}" if row.rank is not None else short_label(board, row)
                ax.plot(steps, means, color=cmap(i % 10), lw=2 if board.is_best(row) else 1, label=label, marker="o" if len(steps) < 20 else None)
        ax.set_title(key)
        ax.set_xlabel("generator step")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="best")
    fig.suptitle(title, fontsize=10)
    return figure_png(fig)


def plots(loaded: Loaded) -> dict[str, tuple[str, bytes | None, str]]:
    """Figure id -> (title, PNG or None, what it shows or why it is missing)."""
    board = loaded.board
    quality_logged = any(len(c.get(board.metric, [])) > 1 for c in loaded.curves.values())
    return {
        "ranked": (f"{board.metric} by configuration", plot_ranked(board),
                   f"Mean and 95% CI of {board.metric} per ranked configuration; ticks are single seeds."
                   if board.ranked else f"No configuration has {board.metric}: nothing to plot."),
        "losses": ("Loss curves", plot_curves(board, loaded.curves, ("d_loss", "g_loss"), "Training losses (mean over seeds)"),
                   f"Discriminator and generator loss per step, mean over each configuration's finished seeds (top {TOP_CURVES} rows)."),
        "quality": (f"{board.metric} over training",
                    plot_curves(board, loaded.curves, (board.metric,), f"{board.metric} over training (mean over seeds)") if quality_logged else None,
                    f"{board.metric} at each evaluation during training." if quality_logged
                    else f"{board.metric} was evaluated only once per run (set eval.every=N to log it during training)."),
    }
