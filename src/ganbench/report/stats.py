"""The report's statistics: per-configuration summaries with t-based intervals, Welch's test, Holm's adjustment."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scipy import stats as scipy_stats

ALPHA = 0.05
TEST_NAME = "Welch's t-test"
TEST_NOTE = (
    "Welch's two-sided t-test of each row's per-seed values against the best row's, Holm-adjusted over the "
    "comparisons made (alpha = {alpha}). It allows the two configurations different seed-to-seed spreads and works "
    "from 2 seeds a side; rank tests cannot: with 3 seeds each the smallest p Mann-Whitney can give is 0.10. "
    "It assumes each configuration's values are roughly normal across seeds; with few seeds it has little power, "
    "so 'no' means 'not shown to differ', not 'equal'."
)


def finite(value: Any) -> bool:
    """A number that can be aggregated: an int or float, not NaN or infinite."""
    return isinstance(value, (int, float)) and math.isfinite(value)


@dataclass(frozen=True)
class Stat:
    """One metric of one configuration over its seeds: mean, sample std and t-based 95% interval."""

    values: tuple[float, ...]
    mean: float | None
    std: float | None
    low: float | None
    high: float | None

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def half_width(self) -> float | None:
        return None if self.high is None or self.mean is None else self.high - self.mean


def summarize(values: Iterable[float], confidence: float = 0.95) -> Stat:
    """Mean and ``confidence`` interval ``mean +- t(n-1) * s / sqrt(n)``; no interval from one value."""
    vals = tuple(float(v) for v in values)
    n = len(vals)
    if n == 0:
        return Stat(vals, None, None, None, None)
    mean = math.fsum(vals) / n
    if n == 1:
        return Stat(vals, mean, None, None, None)
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in vals) / (n - 1))
    half = float(scipy_stats.t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
    return Stat(vals, mean, std, mean - half, mean + half)


def welch_p(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided p of Welch's t-test (``scipy.stats.ttest_ind(a, b, equal_var=False)``).

    None when it cannot be computed: fewer than 2 values a side, or no spread on either side (then t is 0/0).
    One side without spread is fine: the other side's variance carries the test.
    """
    xa, xb = [float(v) for v in a], [float(v) for v in b]
    if len(xa) < 2 or len(xb) < 2:
        return None
    if len(set(xa)) == 1 and len(set(xb)) == 1:
        return None
    with warnings.catch_warnings():
        # scipy warns of "precision loss" for a side whose values are all equal; its variance is exactly 0 then.
        warnings.simplefilter("ignore", RuntimeWarning)
        p = float(scipy_stats.ttest_ind(xa, xb, equal_var=False).pvalue)
    return p if math.isfinite(p) else None


def holm(pvalues: Mapping[Any, float]) -> dict[Any, float]:
    """Holm-Bonferroni adjusted p-values (they control the family-wise error rate of the comparisons)."""
    ordered = sorted(pvalues.items(), key=lambda kv: (kv[1], str(kv[0])))
    m, running, adjusted = len(ordered), 0.0, {}
    for i, (key, p) in enumerate(ordered):
        running = max(running, min(1.0, (m - i) * p))
        adjusted[key] = running
    return adjusted
