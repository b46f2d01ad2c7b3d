"""Tests for the checks that flag unstable timings."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from perfsuite.stability import StabilityLimits, stability_problems

LIMITS = StabilityLimits(timer_resolution_s=1e-9)


def test_steady_rounds_pass():
    assert stability_problems([1.00, 1.01, 0.99, 1.00, 1.02, 1.00], LIMITS) == []


def test_wide_spread_flagged():
    problems = stability_problems([1.0, 1.5, 2.0, 1.0, 3.0, 1.2], LIMITS)

    assert len(problems) == 1
    assert "vary widely" in problems[0]
    assert "limit 10%" in problems[0]


def test_few_rounds_flagged():
    problems = stability_problems([1.00, 1.08, 1.16], LIMITS)

    assert len(problems) == 1
    assert "only 3 rounds" in problems[0]
    assert "--perf-quick" in problems[0]


def test_short_round_flagged():
    limits = StabilityLimits(timer_resolution_s=1e-6)

    problems = stability_problems([5e-4] * 10, limits)

    assert len(problems) == 1
    assert "1000 ticks" in problems[0]


def test_empty_rounds_pass():
    assert stability_problems([], LIMITS) == []


@given(st.floats(min_value=1e-3, max_value=1e3), st.integers(min_value=1, max_value=50))
def test_identical_rounds_stable(value, count):
    assert stability_problems([value] * count, LIMITS) == []
