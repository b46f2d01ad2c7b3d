"""The one mechanism that times generation phases, shared by every backend.

``Backend.generate`` reads the clock once before the prefill and once after each token
is chosen, so time to first token, per-token decode latency and decode throughput all
come from the same generation run. Tests pass a fake clock to check the arithmetic.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Clock = Callable[[], float]
DEFAULT_CLOCK: Clock = time.perf_counter


@dataclass(frozen=True)
class GenerationTiming:
    """Timestamps of one generation run, in seconds of the clock that took them."""

    started: float
    token_times: tuple[float, ...]

    @property
    def time_to_first_token_s(self) -> float:
        return self.token_times[0] - self.started

    @property
    def decode_steps_s(self) -> tuple[float, ...]:
        """Latency of each decode step: the time from one chosen token to the next."""
        return tuple(later - earlier for earlier, later in zip(self.token_times, self.token_times[1:]))

    @property
    def total_s(self) -> float:
        return self.token_times[-1] - self.started

    @property
    def decode_tokens_per_second(self) -> float | None:
        """Tokens per second of the decode phase alone (prefill excluded); None with one token."""
        steps = self.decode_steps_s
        if not steps or sum(steps) <= 0:
            return None
        return len(steps) / sum(steps)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Return the ``fraction`` quantile of ``values`` by linear interpolation (numpy's default method)."""
    if not values:
        raise ValueError("percentile of an empty sequence")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be within [0, 1], got {fraction}")

    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    weight = position - lower
    value = ordered[lower] + (ordered[upper] - ordered[lower]) * weight
    # Rounding can push the interpolation a unit past its neighbours; keep it between them.
    return min(max(value, ordered[lower]), ordered[upper])


def median(values: Sequence[float]) -> float:
    return percentile(values, 0.5)


def measure_clock_overhead(clock: Clock = DEFAULT_CLOCK, calls: int = 100_000) -> float:
    """Return the seconds one timestamp costs the generation loop: a clock read plus a list append.

    The cost of the same loop without the clock read is subtracted, so only what the
    timing adds is counted.
    """
    stamps: list[float] = []
    started = clock()
    for _ in range(calls):
        stamps.append(clock())
    with_clock = clock() - started

    empty: list[float] = []
    started = clock()
    for index in range(calls):
        empty.append(index)
    without_clock = clock() - started

    return max(with_clock - without_clock, 0.0) / calls
