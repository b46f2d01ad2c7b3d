"""Checks that flag timings too noisy or too short to trust, each with what to change."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from perfsuite.timing import median, percentile

# A round shorter than this many timer ticks has a quantization error above 0.1%.
MIN_TICKS_PER_ROUND = 1000
# Relative spread (IQR / median) above which a figure is reported as unstable.
MAX_RELATIVE_SPREAD = 0.10
# With fewer rounds, a spread above this already leaves the median uncertain by several percent.
FEW_ROUNDS = 5
FEW_ROUNDS_SPREAD = 0.05


class UnstableResultWarning(UserWarning):
    """A benchmark's rounds vary too much, are too few, or are too short for the timer."""


@dataclass(frozen=True)
class StabilityLimits:
    """Thresholds of the stability checks; the defaults are the module constants."""

    timer_resolution_s: float
    max_relative_spread: float = MAX_RELATIVE_SPREAD
    few_rounds: int = FEW_ROUNDS
    few_rounds_spread: float = FEW_ROUNDS_SPREAD


def perf_counter_resolution() -> float:
    return time.get_clock_info("perf_counter").resolution


def stability_problems(rounds_s: Sequence[float], limits: StabilityLimits) -> list[str]:
    """Return one message per problem found in ``rounds_s``, the per-round seconds; empty when stable."""
    if not rounds_s:
        return []

    problems = []
    middle = median(rounds_s)
    spread = (percentile(rounds_s, 0.75) - percentile(rounds_s, 0.25)) / middle if middle > 0 else 0.0

    if spread > limits.max_relative_spread:
        problems.append(
            f"rounds vary widely (IQR {spread:.0%} of the median, limit {limits.max_relative_spread:.0%}); "
            f"close other programs, pin --perf-threads below the core count, or raise --perf-rounds"
        )
    elif len(rounds_s) < limits.few_rounds and spread > limits.few_rounds_spread:
        problems.append(
            f"only {len(rounds_s)} rounds for an IQR of {spread:.0%} of the median; "
            f"pass --perf-rounds {limits.few_rounds} or more, or use the full profile (drop --perf-quick)"
        )

    shortest = min(rounds_s)
    if shortest < MIN_TICKS_PER_ROUND * limits.timer_resolution_s:
        problems.append(
            f"the shortest round took {shortest * 1e9:.0f} ns, under {MIN_TICKS_PER_ROUND} ticks of the "
            f"{limits.timer_resolution_s * 1e9:.0f} ns timer; time longer work per round"
        )
    return problems
