"""Two-sample statistics behind the regression gate: pure functions on per-round values.

A metric changes only when two tests agree. The Mann-Whitney U test (two-sided) must give
p < alpha, and the bootstrap interval on the ratio of medians (head / base) must exclude 1,
with the point estimate at least ``min_effect`` away from 1. Effects are factors: with
``min_effect`` 0.05 the band of "no real change" is [1 / 1.05, 1.05], so swapping base and
head turns "slower" into "faster" exactly. Everything is computed on log ratios for the
same reason.

The interval is the percentile bootstrap at confidence 1 - alpha, so "unchanged" (the whole
interval inside the band) is at least as strict as two one-sided tests at alpha.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

from perfsuite.compare.errors import InvalidThresholdError

logger = logging.getLogger(__name__)

# The perfsuite.compare package docstring gives the reasons for these defaults and the A/A
# measurements (the same code measured twice) behind them.
DEFAULT_ALPHA = 0.01
DEFAULT_MIN_EFFECT = 0.05
DEFAULT_RESAMPLES = 10_000
DEFAULT_MIN_ROUNDS = 3
DEFAULT_SEED = 0

# Inconclusive results needing more than this many times their rounds get no estimate.
MAX_ROUNDS_FACTOR = 100

# Upper bound on values held at once while bootstrapping (resamples x rounds), about 16 MB of float64.
_BOOTSTRAP_CHUNK_VALUES = 2_000_000


class Direction(enum.Enum):
    """Direction in which a metric improves."""

    LOWER = "lower"
    HIGHER = "higher"


class Verdict(enum.Enum):
    """The gate's decision for one metric.

    ``FASTER`` and ``SLOWER`` mean better and worse in the metric's direction, so a rise in
    tokens per second is ``FASTER`` and a rise in peak memory is ``SLOWER``.
    """

    FASTER = "faster"
    SLOWER = "slower"
    UNCHANGED = "unchanged"
    INCONCLUSIVE = "inconclusive"

    def swapped(self) -> Verdict:
        """Return the verdict of the same comparison with base and head exchanged."""
        if self is Verdict.FASTER:
            return Verdict.SLOWER
        if self is Verdict.SLOWER:
            return Verdict.FASTER
        return self


@dataclass(frozen=True)
class Thresholds:
    """Statistical settings of one comparison.

    ``min_rounds`` is the fewest rounds per side worth comparing at all. ``seed`` makes the
    bootstrap deterministic.
    """

    alpha: float = DEFAULT_ALPHA
    min_effect: float = DEFAULT_MIN_EFFECT
    resamples: int = DEFAULT_RESAMPLES
    min_rounds: int = DEFAULT_MIN_ROUNDS
    seed: int = DEFAULT_SEED

    def __post_init__(self) -> None:
        _require_number("alpha", self.alpha)
        if not 0.0 < self.alpha < 1.0:
            raise InvalidThresholdError(f"alpha must be between 0 and 1 exclusive, got {self.alpha!r}; 0.01 is usual")

        _require_number("min_effect", self.min_effect)
        if not 0.0 <= self.min_effect < 1.0:
            raise InvalidThresholdError(
                f"min_effect must be at least 0 and below 1, got {self.min_effect!r}; 0.05 means a 5% change"
            )

        _require_integer("resamples", self.resamples)
        if self.resamples < 100:
            raise InvalidThresholdError(f"resamples must be at least 100, got {self.resamples}; 10000 is usual")

        _require_integer("min_rounds", self.min_rounds)
        if self.min_rounds < 2:
            raise InvalidThresholdError(f"min_rounds must be at least 2, got {self.min_rounds}")

        _require_integer("seed", self.seed)
        if self.seed < 0:
            raise InvalidThresholdError(f"seed must be 0 or more, got {self.seed}")

    @property
    def confidence(self) -> float:
        """Confidence level of the ratio interval: 1 - alpha."""
        return 1.0 - self.alpha


def _require_number(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidThresholdError(f"{name} must be a finite number, got {value!r}")


def _require_integer(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidThresholdError(f"{name} must be a whole number, got {value!r}")


@dataclass(frozen=True)
class RatioInterval:
    """A bootstrap confidence interval on head median / base median."""

    low: float
    high: float
    confidence: float

    def contains(self, ratio: float) -> bool:
        return self.low <= ratio <= self.high


@dataclass(frozen=True)
class SampleComparison:
    """The statistics and verdict of one metric, base against head.

    ``ratio`` is head median / base median, ``None`` when a median is not positive.
    ``more_rounds`` is an estimate, set only for inconclusive results where one can be
    made, of how many more rounds per side would likely decide the question.
    """

    verdict: Verdict
    direction: Direction
    base_median: float
    head_median: float
    base_rounds: int
    head_rounds: int
    ratio: float | None
    interval: RatioInterval | None
    p_value: float | None
    reason: str
    more_rounds: int | None = None


def median(values: Sequence[float]) -> float:
    return float(np.median(np.asarray(values, dtype=np.float64)))


def mann_whitney_p_value(base: Sequence[float], head: Sequence[float]) -> float:
    """Return the two-sided Mann-Whitney U p-value of ``head`` against ``base``.

    SciPy picks the exact distribution for small samples without ties and the normal
    approximation otherwise. When every value of both samples is equal, the statistic has
    no variance and SciPy returns NaN; that case is no evidence of a shift, so it is 1.0.
    """
    result = scipy_stats.mannwhitneyu(head, base, alternative="two-sided", method="auto")
    p_value = float(result.pvalue)
    if math.isnan(p_value):
        return 1.0
    return p_value


def smallest_possible_p_value(base_rounds: int, head_rounds: int) -> float:
    """Return the smallest two-sided exact Mann-Whitney p-value these sample sizes allow.

    It is reached when the samples do not overlap at all: 2 / C(n + m, n).
    """
    return min(1.0, 2.0 / math.comb(base_rounds + head_rounds, base_rounds))


def rounds_to_reach(alpha: float) -> int:
    """Return the fewest rounds per side for which a complete separation gives p < alpha."""
    rounds = 1
    while smallest_possible_p_value(rounds, rounds) >= alpha:
        rounds += 1
    return rounds


def bootstrap_ratio_interval(
    base: Sequence[float],
    head: Sequence[float],
    *,
    confidence: float,
    resamples: int,
    seed: int,
    base_run_sizes: Sequence[int] | None = None,
    head_run_sizes: Sequence[int] | None = None,
) -> RatioInterval:
    """Return the percentile bootstrap interval on median(head) / median(base).

    Each side is resampled independently. A side pooled from several runs, whose
    consecutive lengths are given in ``*_run_sizes``, is resampled in two stages: runs with
    replacement, then rounds with replacement within each chosen run. The interval then
    widens with run-to-run shifts, which resampling pooled rounds alone would hide.

    The random stream of each side depends on the seed and on which side sorts first by
    content, not on its role. The bounds are order statistics of the log ratios. Together
    these make exchanging base and head invert the interval exactly. Raises ValueError
    unless every value is positive and finite.
    """
    low, high = _bootstrap_log_ratio_bounds(
        base, head, confidence, resamples, seed, base_run_sizes=base_run_sizes, head_run_sizes=head_run_sizes
    )
    return RatioInterval(low=math.exp(low), high=math.exp(high), confidence=confidence)


def _bootstrap_log_ratio_bounds(
    base: Sequence[float],
    head: Sequence[float],
    confidence: float,
    resamples: int,
    seed: int,
    *,
    base_run_sizes: Sequence[int] | None,
    head_run_sizes: Sequence[int] | None,
) -> tuple[float, float]:
    base_array = _as_positive_array(base, "base")
    head_array = _as_positive_array(head, "head")
    base_sizes = _run_sizes(base_run_sizes, base_array.size, "base")
    head_sizes = _run_sizes(head_run_sizes, head_array.size, "head")

    base_key = _content_key(base_array, base_sizes)
    head_key = _content_key(head_array, head_sizes)
    base_generator, head_generator = _generators_for(base_key, head_key, seed)
    head_medians = _bootstrap_log_medians(head_array, head_sizes, head_generator, resamples)
    base_medians = _bootstrap_log_medians(base_array, base_sizes, base_generator, resamples)
    log_ratios = np.sort(head_medians - base_medians)

    # The k-th smallest and k-th largest resample bound the central `confidence` share.
    k = int(math.floor((1.0 - confidence) / 2.0 * resamples))
    low, high = float(log_ratios[k]), float(log_ratios[resamples - 1 - k])

    if base_key == head_key:
        # Equal samples have a log ratio distribution symmetric about 0, so the interval is made
        # symmetric too and no longer depends on which side drew which stream.
        half_width = max(-low, high)
        return -half_width, half_width
    return low, high


def _run_sizes(sizes: Sequence[int] | None, total: int, side: str) -> np.ndarray:
    if sizes is None:
        return np.asarray([total])
    array = np.asarray(sizes, dtype=np.int64)
    if array.ndim != 1 or array.size == 0 or np.any(array < 1) or int(array.sum()) != total:
        raise ValueError(f"{side} run sizes {list(sizes)} must be positive and add up to its {total} values")
    return array


def _as_positive_array(values: Sequence[float], side: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{side} must be a non-empty sequence of numbers, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{side} contains a value that is not finite: {array[~np.isfinite(array)][0]!r}")
    if np.any(array <= 0):
        raise ValueError(f"{side} contains {array[array <= 0][0]!r}; a ratio of medians needs positive values")
    return array


def _generators_for(
    base_key: tuple[int, bytes], head_key: tuple[int, bytes], seed: int
) -> tuple[np.random.Generator, np.random.Generator]:
    first_stream, second_stream = np.random.SeedSequence(seed).spawn(2)
    if base_key <= head_key:
        return np.random.default_rng(first_stream), np.random.default_rng(second_stream)
    return np.random.default_rng(second_stream), np.random.default_rng(first_stream)


def _content_key(values: np.ndarray, run_sizes: np.ndarray) -> tuple[int, bytes]:
    digest = hashlib.blake2b(values.tobytes() + run_sizes.tobytes(), digest_size=16).digest()
    return values.size, digest


def _bootstrap_log_medians(
    values: np.ndarray, run_sizes: np.ndarray, generator: np.random.Generator, resamples: int
) -> np.ndarray:
    """Return the log median of each of ``resamples`` two-stage resamples (runs, then rounds)."""
    runs = run_sizes.size
    width = int(run_sizes.max())
    offsets = np.concatenate(([0], np.cumsum(run_sizes)[:-1]))
    equal_sizes = bool(np.all(run_sizes == width))
    rows_per_chunk = max(1, _BOOTSTRAP_CHUNK_VALUES // (runs * width))

    chunks = []
    for start in range(0, resamples, rows_per_chunk):
        rows = min(rows_per_chunk, resamples - start)
        chosen = generator.integers(0, runs, size=(rows, runs)) if runs > 1 else np.zeros((rows, 1), dtype=np.int64)
        chosen_sizes = run_sizes[chosen][..., np.newaxis]

        uniform = generator.random(size=(rows, runs, width))
        local = np.minimum(np.floor(uniform * chosen_sizes).astype(np.int64), chosen_sizes - 1)
        resampled = values[offsets[chosen][..., np.newaxis] + local]

        if equal_sizes:
            chunks.append(np.median(resampled.reshape(rows, -1), axis=1))
            continue
        # A chosen run shorter than the longest contributes only its own length of draws.
        resampled = np.where(np.arange(width) < chosen_sizes, resampled, np.nan)
        chunks.append(np.nanmedian(resampled.reshape(rows, -1), axis=1))
    return np.log(np.concatenate(chunks))


def compare_samples(
    base: Sequence[float],
    head: Sequence[float],
    direction: Direction = Direction.LOWER,
    thresholds: Thresholds | None = None,
    *,
    base_run_sizes: Sequence[int] | None = None,
    head_run_sizes: Sequence[int] | None = None,
) -> SampleComparison:
    """Compare the per-round values of one metric and return the statistics with a verdict.

    ``slower`` (worse): p < alpha, the interval lies entirely on the worse side of 1, and
    the ratio is at least 1 + min_effect worse. ``faster`` is the mirror image.
    ``unchanged``: the interval lies inside [1 / (1 + min_effect), 1 + min_effect].
    Anything else, too few rounds and non-positive values included, is ``inconclusive``.
    ``*_run_sizes`` split a side pooled from several runs (see bootstrap_ratio_interval).
    Raises ValueError for values that are not finite numbers.
    """
    thresholds = thresholds or Thresholds()
    base_values = _as_finite_list(base, "base")
    head_values = _as_finite_list(head, "head")
    base_median = median(base_values) if base_values else math.nan
    head_median = median(head_values) if head_values else math.nan

    def inconclusive(reason: str, more_rounds: int | None = None) -> SampleComparison:
        return SampleComparison(
            verdict=Verdict.INCONCLUSIVE,
            direction=direction,
            base_median=base_median,
            head_median=head_median,
            base_rounds=len(base_values),
            head_rounds=len(head_values),
            ratio=None,
            interval=None,
            p_value=None,
            reason=reason,
            more_rounds=more_rounds,
        )

    rounds = min(len(base_values), len(head_values))
    if rounds < thresholds.min_rounds:
        needed = max(thresholds.min_rounds, rounds_to_reach(thresholds.alpha))
        return inconclusive(
            f"{len(base_values)} base and {len(head_values)} head round(s); "
            f"at least {thresholds.min_rounds} per side are needed",
            more_rounds=needed - rounds,
        )

    if min(base_values) <= 0 or min(head_values) <= 0:
        return inconclusive("a value is 0 or negative, so the ratio of medians is undefined")

    # NOTE: the U test treats pooled rounds as independent, so it overstates significance when
    # whole runs shift. The run-level bootstrap interval, which the verdict also needs, guards that.
    p_value = mann_whitney_p_value(base_values, head_values)
    log_ratio = math.log(head_median) - math.log(base_median)
    log_low, log_high = _bootstrap_log_ratio_bounds(
        base_values,
        head_values,
        thresholds.confidence,
        thresholds.resamples,
        thresholds.seed,
        base_run_sizes=base_run_sizes,
        head_run_sizes=head_run_sizes,
    )
    # A percentile interval can in principle miss the point estimate on skewed samples; keep it inside.
    log_low, log_high = min(log_low, log_ratio), max(log_high, log_ratio)

    decision = _decide(log_ratio, log_low, log_high, p_value, direction, thresholds, len(base_values), len(head_values))
    return SampleComparison(
        verdict=decision.verdict,
        direction=direction,
        base_median=base_median,
        head_median=head_median,
        base_rounds=len(base_values),
        head_rounds=len(head_values),
        ratio=math.exp(log_ratio),
        interval=RatioInterval(math.exp(log_low), math.exp(log_high), thresholds.confidence),
        p_value=p_value,
        reason=decision.reason,
        more_rounds=decision.more_rounds,
    )


def _as_finite_list(values: Sequence[float], side: str) -> list[float]:
    result = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{side} contains {value!r}; every value must be a finite number")
        result.append(float(value))
    return result


@dataclass(frozen=True)
class _Decision:
    verdict: Verdict
    reason: str
    more_rounds: int | None = None


def _decide(
    log_ratio: float,
    log_low: float,
    log_high: float,
    p_value: float,
    direction: Direction,
    thresholds: Thresholds,
    base_rounds: int,
    head_rounds: int,
) -> _Decision:
    # Work in "how much worse" log units: positive is worse whichever way the metric improves.
    sign = 1.0 if direction is Direction.LOWER else -1.0
    worse = sign * log_ratio
    worse_low, worse_high = sorted((sign * log_low, sign * log_high))
    threshold = math.log1p(thresholds.min_effect)
    significant = p_value < thresholds.alpha

    if significant and worse_low > 0 and worse >= threshold:
        return _Decision(Verdict.SLOWER, f"p < {thresholds.alpha:g} and the interval excludes 1")
    if significant and worse_high < 0 and worse <= -threshold:
        return _Decision(Verdict.FASTER, f"p < {thresholds.alpha:g} and the interval excludes 1")
    if -threshold <= worse_low and worse_high <= threshold:
        return _Decision(Verdict.UNCHANGED, f"the interval lies within ±{thresholds.min_effect:.0%}")

    if abs(worse) < threshold:
        reason = f"the interval is too wide to show the change is within ±{thresholds.min_effect:.0%}"
    elif significant:
        reason = "p is below alpha but the interval still includes 1"
    else:
        reason = f"the change reaches ±{thresholds.min_effect:.0%} but p is not below alpha {thresholds.alpha:g}"

    floor = smallest_possible_p_value(base_rounds, head_rounds)
    if floor >= thresholds.alpha:
        reason += (
            f"; with {base_rounds} and {head_rounds} rounds p cannot go below {floor:.3g}, "
            f"so a change at alpha {thresholds.alpha:g} cannot be shown"
        )

    rounds = min(base_rounds, head_rounds)
    more_rounds = _estimate_more_rounds(worse, worse_low, worse_high, threshold, thresholds, rounds)
    if more_rounds is None:
        reason += (
            "; no estimate of the rounds needed is given, because the interval is too wide or the change "
            "too close to the threshold for more rounds to settle it soon"
        )
    return _Decision(Verdict.INCONCLUSIVE, reason, more_rounds)


def _estimate_more_rounds(
    worse: float, worse_low: float, worse_high: float, threshold: float, thresholds: Thresholds, rounds: int
) -> int | None:
    """Estimate the extra rounds per side that would decide an inconclusive comparison.

    It assumes that the interval half-width shrinks as 1 / sqrt(rounds) and that the point
    estimate stays where it is. Neither is guaranteed, so the result is only a guide. It
    returns None when the point estimate sits so close to a boundary that more than
    MAX_ROUNDS_FACTOR times the current rounds would be needed. For a side pooled from runs
    that disagree, more runs rather than more rounds per run may be what is missing.
    """
    if abs(worse) >= threshold:
        # Deciding "slower" or "faster" needs the interval to stop crossing 1, and p < alpha.
        if worse == 0:
            return None
        half_width = worse - worse_low if worse > 0 else worse_high - worse
        shrink = half_width / abs(worse)
        minimum = rounds_to_reach(thresholds.alpha)
    else:
        # Deciding "unchanged" needs each end of the interval inside its side of the band.
        if threshold - worse <= 0 or threshold + worse <= 0:
            return None
        shrink = max((worse_high - worse) / (threshold - worse), (worse - worse_low) / (threshold + worse))
        minimum = thresholds.min_rounds

    if shrink**2 > MAX_ROUNDS_FACTOR:
        return None
    needed = math.ceil(rounds * shrink**2)
    needed = max(needed, minimum, rounds + 1)
    return needed - rounds
