"""What the claims read: one system's finished runs over seeds (``SystemRuns``), and small statistics on them."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ganbench.report.stats import finite, summarize, welch_p

History = Sequence[tuple[int, float]]  # [(step, value)] of one metric of one run


@dataclass(frozen=True)
class SeedRun:
    """One finished run of a system: its final metrics, tags, and the per-step histories a claim needs."""

    seed: str
    metrics: Mapping[str, float]
    tags: Mapping[str, str] = field(default_factory=dict)
    histories: Mapping[str, History] = field(default_factory=dict)


@dataclass(frozen=True)
class SystemRuns:
    """A system's finished runs (one per seed) under its preset name."""

    preset: str
    runs: tuple[SeedRun, ...] = ()
    unfinished: tuple[str, ...] = ()  # "seed 0: diverged (non-finite loss at step 1710)" for each run that did not finish

    def values(self, metric: str) -> list[float]:
        """``metric``'s final value in every run that logged a finite one."""
        return [float(r.metrics[metric]) for r in self.runs if finite(r.metrics.get(metric))]

    def tag_values(self, tag: str) -> set[str]:
        return {r.tags[tag] for r in self.runs if tag in r.tags}


def mean_ci(values: Sequence[float], digits: int = 3) -> str:
    """``0.953 ± 0.012 (n=3)``: the mean and the 95% t half-width over seeds; a single value has no interval."""
    stat = summarize(values)
    if stat.mean is None:
        return "–"
    half = stat.half_width
    spread = f" ± {half:.{digits}g}" if half is not None and math.isfinite(half) else ""
    return f"{stat.mean:.{digits}g}{spread} (n={stat.n})"


def mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


@dataclass(frozen=True)
class Comparison:
    """Whether side ``a`` is better than side ``b`` over seeds, by Welch's t-test."""

    a: list[float]
    b: list[float]
    lower_is_better: bool
    p: float | None

    @property
    def a_better(self) -> bool:
        return (mean(self.a) < mean(self.b)) if self.lower_is_better else (mean(self.a) > mean(self.b))


def compare(a: Sequence[float], b: Sequence[float], lower_is_better: bool) -> Comparison:
    return Comparison(list(a), list(b), lower_is_better, welch_p(a, b))


def epoch_means(values: History, epoch_ends: Sequence[int]) -> list[tuple[float, float]]:
    """Per-epoch (mean, std) of a per-step history, epochs split at the steps in ``epoch_ends`` (each the last step of one)."""
    out = []
    start = -1
    for end in sorted(epoch_ends):
        chunk = [v for s, v in values if start < s <= end and math.isfinite(v)]
        start = end
        if chunk:
            m = mean(chunk)
            sd = math.sqrt(math.fsum((v - m) ** 2 for v in chunk) / max(1, len(chunk) - 1))
            out.append((m, sd))
    return out


def settled_after(per_epoch: Sequence[tuple[float, float]]) -> int | None:
    """The first epoch (1-based) from which the per-epoch means drift less than the loss oscillates inside an epoch.

    "Settled into an oscillating band" as a statistic: from epoch k on, max - min of the per-epoch means is
    below the mean within-epoch standard deviation, and that deviation is not zero (the loss still moves).
    None when no such k leaves at least two epochs.
    """
    for k in range(len(per_epoch) - 1):
        tail = per_epoch[k:]
        means = [m for m, _ in tail]
        spread = math.fsum(s for _, s in tail) / len(tail)
        if spread > 0 and max(means) - min(means) < spread:
            return k + 1
    return None
