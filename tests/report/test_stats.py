"""The report's statistics worked by hand: t intervals, Welch's test (scipy's, checked independently), Holm."""

import math

import numpy as np
import pytest
from scipy import stats

from ganbench.report.stats import finite, holm, summarize, welch_p


def test_mean_and_t_interval_worked_by_hand():
    s = summarize([10.0, 12.0, 14.0])
    # mean 12, sample std 2; t(0.975, df=2) = 4.302653 -> half-width 4.302653 * 2 / sqrt(3) = 4.968275
    assert s.n == 3 and s.mean == 12.0 and s.std == pytest.approx(2.0)
    assert s.half_width == pytest.approx(4.968275, abs=1e-6)
    assert (s.low, s.high) == pytest.approx((7.031725, 16.968275), abs=1e-6)


def test_one_seed_gives_a_mean_but_no_interval_and_none_gives_nothing():
    one = summarize([3.5])
    assert one.mean == 3.5 and one.std is None and one.low is None and one.half_width is None
    assert summarize([]).mean is None and summarize([]).n == 0


def test_welch_p_worked_by_hand():
    # Equal spreads (var 4, n 3 each): t = 10 / sqrt(8/3), t^2 = 37.5, df = 4. For df = 4 the two-sided
    # p is 1 - (3/2) x (1 - x^2/3) with x = sqrt(t^2 / (4 + t^2)) = sqrt(37.5 / 41.5): p = 0.0036022.
    assert welch_p([20.0, 22.0, 24.0], [10.0, 12.0, 14.0]) == pytest.approx(0.0036022, abs=1e-6)
    # t = 1 / sqrt(8/3): t^2 = 0.375, x = sqrt(0.375 / 4.375) -> p = 0.5733923.
    assert welch_p([11.0, 13.0, 15.0], [10.0, 12.0, 14.0]) == pytest.approx(0.5733923, abs=1e-6)


def test_welch_p_matches_welch_t_and_satterthwaite_df_computed_independently():
    # Unequal sizes and spreads, so the Welch-Satterthwaite df is not an integer and differs from a pooled test's.
    a, b = np.array([3.1, 4.7, 2.2, 5.9]), np.array([7.5, 6.1, 9.8])
    ea, eb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size  # squared standard errors
    t = (a.mean() - b.mean()) / np.sqrt(ea + eb)
    df = (ea + eb) ** 2 / (ea**2 / (a.size - 1) + eb**2 / (b.size - 1))
    expected = 2 * stats.t.sf(abs(t), df)
    assert 4 < df < 5 and 0.01 < expected < 0.1
    assert welch_p(list(a), list(b)) == pytest.approx(expected, rel=1e-10)
    assert welch_p(list(b), list(a)) == pytest.approx(expected, rel=1e-10)  # two-sided: symmetric
    pooled = stats.ttest_ind(a, b, equal_var=True).pvalue
    assert welch_p(list(a), list(b)) != pytest.approx(pooled, rel=1e-3)  # it is Welch's, not Student's


def test_welch_p_is_undefined_without_two_seeds_or_any_spread():
    assert welch_p([1.0], [2.0, 3.0]) is None
    assert welch_p([1.0, 1.0], [2.0, 2.0]) is None
    # One side varying is enough: se^2 = 0 + 0.5/2, t = -1.5 / 0.5 = -3, df = 1 -> p = 2 * (1/2 - atan(3)/pi).
    assert welch_p([1.0, 1.0], [2.0, 3.0]) == pytest.approx(1 - 2 * math.atan(3) / math.pi, abs=1e-9)


def test_holm_adjustment_worked_by_hand():
    # sorted 0.01, 0.03, 0.04 -> 3 x 0.01 = 0.03, 2 x 0.03 = 0.06, max(0.06, 1 x 0.04) = 0.06
    assert holm({"a": 0.01, "b": 0.04, "c": 0.03}) == pytest.approx({"a": 0.03, "c": 0.06, "b": 0.06})
    assert holm({"a": 0.6, "b": 0.9}) == {"a": 1.0, "b": 1.0}


def test_only_finite_numbers_are_aggregated():
    assert finite(1) and finite(2.5) and not finite(float("nan")) and not finite(float("inf")) and not finite(None)
