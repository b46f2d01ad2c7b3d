"""Statistics of the regression gate on constructed samples with known results, and their properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from perfsuite.compare.errors import InvalidThresholdError
from perfsuite.compare.stats import (
    Direction,
    Thresholds,
    Verdict,
    bootstrap_ratio_interval,
    compare_samples,
    mann_whitney_p_value,
    rounds_to_reach,
    smallest_possible_p_value,
)

FAST = Thresholds(resamples=500)


def lognormal(median: float, rounds: int, seed: int, spread: float = 0.02) -> list[float]:
    generator = np.random.default_rng(seed)
    return [float(value) for value in median * np.exp(generator.normal(0.0, spread, rounds))]


def test_p_value_complete_separation_exact():
    base = [1.0, 1.1, 1.2, 1.3, 1.4]
    head = [2.0, 2.1, 2.2, 2.3, 2.4]
    assert mann_whitney_p_value(base, head) == pytest.approx(2 / 252)


def test_p_value_matches_scipy():
    base = lognormal(1.0, 15, seed=1)
    head = lognormal(1.03, 12, seed=2)
    expected = scipy_stats.mannwhitneyu(head, base, alternative="two-sided").pvalue
    assert mann_whitney_p_value(base, head) == pytest.approx(expected)


def test_p_value_symmetric_under_swap():
    base = lognormal(1.0, 9, seed=3)
    head = lognormal(1.1, 14, seed=4)
    assert mann_whitney_p_value(base, head) == mann_whitney_p_value(head, base)


def test_p_value_all_equal_is_one():
    assert mann_whitney_p_value([2.0] * 6, [2.0] * 6) == 1.0


def test_smallest_p_five_rounds():
    assert smallest_possible_p_value(5, 5) == pytest.approx(2 / 252)


def test_rounds_to_reach_alpha():
    assert rounds_to_reach(0.01) == 5
    assert rounds_to_reach(0.05) == 4


def test_double_time_is_slower():
    base = lognormal(0.010, 20, seed=5)
    head = lognormal(0.020, 20, seed=6)
    result = compare_samples(base, head, thresholds=FAST)
    assert result.verdict is Verdict.SLOWER
    assert result.interval.low > 1.0
    assert result.p_value < 0.01
    assert result.ratio == pytest.approx(2.0, rel=0.05)


def test_half_time_is_faster():
    base = lognormal(0.020, 20, seed=7)
    head = lognormal(0.010, 20, seed=8)
    result = compare_samples(base, head, thresholds=FAST)
    assert result.verdict is Verdict.FASTER
    assert result.interval.high < 1.0


def test_one_percent_shift_is_unchanged():
    base = lognormal(1.0, 50, seed=9, spread=0.005)
    head = lognormal(1.01, 50, seed=10, spread=0.005)
    result = compare_samples(base, head, thresholds=FAST)
    assert result.verdict is Verdict.UNCHANGED
    assert result.p_value < 0.01


def test_identical_samples_unchanged():
    values = lognormal(1.0, 20, seed=11)
    result = compare_samples(values, values, thresholds=FAST)
    assert result.verdict is Verdict.UNCHANGED
    assert result.p_value == pytest.approx(1.0)
    assert result.ratio == 1.0


def test_identical_samples_interval_not_degenerate():
    values = lognormal(1.0, 20, seed=12)
    result = compare_samples(values, values, thresholds=FAST)
    assert result.interval.low < 1.0 < result.interval.high


def test_zero_variance_same_constant_unchanged():
    result = compare_samples([0.5] * 10, [0.5] * 10, thresholds=FAST)
    assert result.verdict is Verdict.UNCHANGED
    assert result.p_value == 1.0


def test_zero_variance_double_constant_slower():
    result = compare_samples([0.5] * 10, [1.0] * 10, thresholds=FAST)
    assert result.verdict is Verdict.SLOWER
    assert result.interval.low == pytest.approx(2.0)


def test_higher_is_better_drop_is_slower():
    base = lognormal(1000.0, 20, seed=13)
    head = lognormal(500.0, 20, seed=14)
    result = compare_samples(base, head, Direction.HIGHER, FAST)
    assert result.verdict is Verdict.SLOWER


def test_higher_is_better_rise_is_faster():
    base = lognormal(500.0, 20, seed=15)
    head = lognormal(1000.0, 20, seed=16)
    result = compare_samples(base, head, Direction.HIGHER, FAST)
    assert result.verdict is Verdict.FASTER


def test_two_rounds_inconclusive():
    result = compare_samples([1.0, 1.1], [2.0, 2.1], thresholds=FAST)
    assert result.verdict is Verdict.INCONCLUSIVE
    assert "at least 3 per side" in result.reason
    assert result.more_rounds == 3
    assert result.p_value is None


def test_empty_side_inconclusive():
    result = compare_samples([], [1.0, 1.1, 1.2], thresholds=FAST)
    assert result.verdict is Verdict.INCONCLUSIVE
    assert math.isnan(result.base_median)


def test_three_rounds_cannot_show_change():
    base = [1.0, 1.01, 0.99]
    head = [2.0, 2.02, 1.98]
    result = compare_samples(base, head, thresholds=FAST)
    assert result.verdict is Verdict.INCONCLUSIVE
    assert "p cannot go below 0.1" in result.reason
    assert result.more_rounds == 2


def test_significant_but_runs_disagree():
    # Each side's two runs sit at different levels, so a resample of whole runs can reverse the change.
    base = lognormal(1.0, 10, 1, 0.005) + lognormal(1.06, 10, 2, 0.005)
    head = lognormal(1.02, 10, 4, 0.005) + lognormal(1.4, 10, 5, 0.005)
    result = compare_samples(base, head, thresholds=FAST, base_run_sizes=[10, 10], head_run_sizes=[10, 10])
    assert result.verdict is Verdict.INCONCLUSIVE
    assert result.p_value < 0.01
    assert result.reason.startswith("p is below alpha but the interval still includes 1")


def test_zero_value_inconclusive():
    result = compare_samples([0.0, 1.0, 1.0], [1.0, 1.0, 1.0], thresholds=FAST)
    assert result.verdict is Verdict.INCONCLUSIVE
    assert "0 or negative" in result.reason


def test_nan_value_raises():
    with pytest.raises(ValueError, match="finite"):
        compare_samples([1.0, float("nan"), 1.0], [1.0, 1.0, 1.0])


def test_noisy_small_shift_estimates_rounds():
    base = lognormal(1.0, 8, seed=17, spread=0.1)
    head = lognormal(1.02, 8, seed=18, spread=0.1)
    result = compare_samples(base, head, thresholds=FAST)
    assert result.verdict is Verdict.INCONCLUSIVE
    assert result.more_rounds is not None
    assert result.more_rounds > 0


def test_bootstrap_deterministic():
    base = lognormal(1.0, 12, seed=19)
    head = lognormal(1.1, 12, seed=20)
    first = bootstrap_ratio_interval(base, head, confidence=0.99, resamples=500, seed=3)
    second = bootstrap_ratio_interval(base, head, confidence=0.99, resamples=500, seed=3)
    assert first == second


def test_bootstrap_seed_changes_interval():
    base = lognormal(1.0, 12, seed=21)
    head = lognormal(1.1, 12, seed=22)
    first = bootstrap_ratio_interval(base, head, confidence=0.99, resamples=500, seed=1)
    second = bootstrap_ratio_interval(base, head, confidence=0.99, resamples=500, seed=2)
    assert first != second


def test_bootstrap_runs_widen_interval():
    # Three runs per side at levels 5% apart: resampled rounds stay near the middle run, resampled runs do not.
    levels = (1.0, 1.05, 1.1)
    base = [value for index, level in enumerate(levels) for value in lognormal(level, 10, 23 + index, 0.005)]
    head = [value for index, level in enumerate(levels) for value in lognormal(level, 10, 33 + index, 0.005)]
    flat = bootstrap_ratio_interval(base, head, confidence=0.99, resamples=2000, seed=0)
    grouped = bootstrap_ratio_interval(
        base, head, confidence=0.99, resamples=2000, seed=0, base_run_sizes=[10] * 3, head_run_sizes=[10] * 3
    )
    assert grouped.high - grouped.low > 1.5 * (flat.high - flat.low)


def test_bootstrap_unequal_runs():
    base = lognormal(1.0, 5, seed=27) + lognormal(1.0, 9, seed=28)
    head = lognormal(1.2, 7, seed=29) + lognormal(1.2, 4, seed=30)
    interval = bootstrap_ratio_interval(
        base, head, confidence=0.99, resamples=500, seed=0, base_run_sizes=[5, 9], head_run_sizes=[7, 4]
    )
    assert interval.low > 1.0


def test_bootstrap_bad_run_sizes():
    with pytest.raises(ValueError, match="add up"):
        bootstrap_ratio_interval([1.0] * 6, [1.0] * 6, confidence=0.99, resamples=200, seed=0, base_run_sizes=[2, 2])


def test_verdict_swapped():
    assert Verdict.SLOWER.swapped() is Verdict.FASTER
    assert Verdict.FASTER.swapped() is Verdict.SLOWER
    assert Verdict.UNCHANGED.swapped() is Verdict.UNCHANGED
    assert Verdict.INCONCLUSIVE.swapped() is Verdict.INCONCLUSIVE


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("alpha", 0.0, "alpha must be between 0 and 1"),
        ("alpha", 1.0, "alpha must be between 0 and 1"),
        ("alpha", float("nan"), "alpha must be a finite number"),
        ("alpha", "0.01", "alpha must be a finite number"),
        ("alpha", True, "alpha must be a finite number"),
        ("min_effect", -0.1, "min_effect must be at least 0"),
        ("min_effect", 1.0, "min_effect must be at least 0"),
        ("resamples", 10, "resamples must be at least 100"),
        ("resamples", 1000.0, "resamples must be a whole number"),
        ("min_rounds", 1, "min_rounds must be at least 2"),
        ("seed", -1, "seed must be 0 or more"),
    ],
)
def test_thresholds_invalid(field, value, message):
    with pytest.raises(InvalidThresholdError, match=message):
        Thresholds(**{field: value})


def test_thresholds_confidence():
    assert Thresholds(alpha=0.05).confidence == pytest.approx(0.95)


samples = st.lists(st.floats(min_value=1e-3, max_value=1e3, allow_nan=False, allow_infinity=False), min_size=3, max_size=25)
PROPERTY_THRESHOLDS = Thresholds(resamples=200)


@settings(max_examples=60, deadline=None)
@given(base=samples, head=samples)
def test_interval_contains_ratio(base, head):
    result = compare_samples(base, head, thresholds=PROPERTY_THRESHOLDS)
    assert result.interval.contains(result.ratio)


@settings(max_examples=60, deadline=None)
@given(base=samples, head=samples)
def test_swap_inverts_ratio(base, head):
    forward = compare_samples(base, head, thresholds=PROPERTY_THRESHOLDS)
    backward = compare_samples(head, base, thresholds=PROPERTY_THRESHOLDS)
    assert forward.ratio * backward.ratio == pytest.approx(1.0, rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(base=samples, head=samples)
def test_swap_inverts_interval(base, head):
    forward = compare_samples(base, head, thresholds=PROPERTY_THRESHOLDS)
    backward = compare_samples(head, base, thresholds=PROPERTY_THRESHOLDS)
    assert forward.interval.low * backward.interval.high == pytest.approx(1.0, rel=1e-12)
    assert forward.interval.high * backward.interval.low == pytest.approx(1.0, rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(base=samples, head=samples)
def test_swap_mirrors_verdict(base, head):
    forward = compare_samples(base, head, thresholds=PROPERTY_THRESHOLDS)
    backward = compare_samples(head, base, thresholds=PROPERTY_THRESHOLDS)
    assert backward.verdict is forward.verdict.swapped()


@settings(max_examples=60, deadline=None)
@given(base=samples, head=samples)
def test_direction_mirrors_verdict(base, head):
    lower = compare_samples(base, head, Direction.LOWER, PROPERTY_THRESHOLDS)
    higher = compare_samples(base, head, Direction.HIGHER, PROPERTY_THRESHOLDS)
    assert higher.verdict is lower.verdict.swapped()


@settings(max_examples=40, deadline=None)
@given(values=samples, factor=st.floats(min_value=1.5, max_value=10.0))
def test_scaling_never_faster(values, factor):
    result = compare_samples(values, [value * factor for value in values], thresholds=PROPERTY_THRESHOLDS)
    assert result.verdict is not Verdict.FASTER
