"""Tests for the generation timing mechanism, driven by a fake clock so the arithmetic is exact."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from perfsuite.backends.torch_fp32 import TorchBackend
from perfsuite.measure import decode_percentiles, generation_metrics
from perfsuite.timing import GenerationTiming, measure_clock_overhead, median, percentile


class FakeClock:
    """Returns the next value of a fixed list on each read."""

    def __init__(self, readings: list[float]) -> None:
        self.readings = list(readings)
        self.reads = 0

    def __call__(self) -> float:
        value = self.readings[self.reads]
        self.reads += 1
        return value


@pytest.fixture(scope="module")
def backend(tiny_model, backend_settings):
    return TorchBackend(tiny_model, backend_settings)


def test_generate_reads_clock_once_per_token(backend):
    clock = FakeClock([10.0, 10.5, 10.6, 10.8, 11.1])
    ids = np.array([[464, 2068, 7586]], dtype=np.int64)

    tokens, timing = backend.generate_timed(ids, 4, clock=clock)

    assert clock.reads == 5
    assert tokens.shape == (1, 4)
    assert timing.time_to_first_token_s == pytest.approx(0.5)
    assert timing.decode_steps_s == pytest.approx((0.1, 0.2, 0.3))
    assert timing.total_s == pytest.approx(1.1)
    assert timing.decode_tokens_per_second == pytest.approx(3 / 0.6)


def test_one_token_has_no_decode(backend):
    clock = FakeClock([0.0, 0.25])

    _, timing = backend.generate_timed(np.array([[464]], dtype=np.int64), 1, clock=clock)

    assert timing.time_to_first_token_s == 0.25
    assert timing.decode_steps_s == ()
    assert timing.decode_tokens_per_second is None


def test_generation_metrics_per_round():
    timings = [
        GenerationTiming(started=0.0, token_times=(1.0, 1.1, 1.3)),
        GenerationTiming(started=5.0, token_times=(5.5, 5.9, 6.0)),
    ]

    metrics = generation_metrics(timings, batch_size=2)

    assert metrics["time_to_first_token_s"]["values"] == pytest.approx([1.0, 0.5])
    assert metrics["decode_token_s"]["values"] == pytest.approx([0.15, 0.25])
    assert metrics["decode_tokens_per_second"]["values"] == pytest.approx([2 * 2 / 0.3, 2 * 2 / 0.5])
    assert metrics["decode_tokens_per_second"]["direction"] == "higher"
    assert metrics["time_to_first_token_s"]["direction"] == "lower"


def test_decode_percentiles_pool_rounds():
    timings = [
        GenerationTiming(started=0.0, token_times=(0.0, 1.0, 3.0)),
        GenerationTiming(started=0.0, token_times=(0.0, 3.0, 7.0)),
    ]

    result = decode_percentiles(timings)

    assert result["p50"] == pytest.approx(2.5)
    assert result["p90"] == pytest.approx(3.7)
    assert result["p99"] == pytest.approx(3.97)


def test_decode_percentiles_none_without_steps():
    assert decode_percentiles([GenerationTiming(0.0, (1.0,))]) is None


@given(st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=1, max_size=200), st.floats(0, 1))
def test_percentile_matches_numpy(values, fraction):
    expected = float(np.percentile(values, fraction * 100))

    assert percentile(values, fraction) == pytest.approx(expected, rel=1e-9, abs=1e-9)


@given(st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=1, max_size=100))
def test_percentile_bounds_ordered(values):
    p50, p90, p99 = (percentile(values, fraction) for fraction in (0.5, 0.9, 0.99))

    assert min(values) <= p50 <= p90 <= p99 <= max(values)
    assert median(values) == p50


def test_percentile_rejects_empty():
    with pytest.raises(ValueError, match="empty"):
        percentile([], 0.5)


def test_percentile_rejects_fraction():
    with pytest.raises(ValueError, match="1.5"):
        percentile([1.0], 1.5)


def test_clock_overhead_counts_fake_reads():
    ticks = iter(range(10**7))

    overhead = measure_clock_overhead(clock=lambda: float(next(ticks)), calls=1000)

    # Each timed section spans its reads: 1001 ticks with the clock in the loop, 1 tick without.
    assert overhead == pytest.approx(1.0)


def test_clock_overhead_real_is_small():
    overhead = measure_clock_overhead(calls=10_000)

    assert 0 <= overhead < 1e-5
    assert math.isfinite(overhead)
