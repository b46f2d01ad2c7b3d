"""Flatten a GateResult into display rows with formatted numbers, shared by the Markdown and terminal reports."""

from __future__ import annotations

import math
from dataclasses import dataclass

from perfsuite.compare.gate import BenchmarkResult, GateResult, MetricResult, Outcome, Status
from perfsuite.compare.stats import SampleComparison, Verdict

COLUMNS = ("benchmark", "metric", "baseline median", "current median", "ratio (CI)", "p", "verdict", "note")

_TIME_UNITS = ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs"), (1e-9, "ns"))
_BYTE_UNITS = ((2.0**30, "GiB"), (2.0**20, "MiB"), (2.0**10, "KiB"))


@dataclass(frozen=True)
class ResultRow:
    """One table row: a metric of a compared benchmark, or a benchmark that was not compared."""

    benchmark: str
    metric: str
    baseline: str
    current: str
    ratio: str
    p_value: str
    verdict: str
    note: str

    def cells(self) -> tuple[str, ...]:
        return (self.benchmark, self.metric, self.baseline, self.current, self.ratio, self.p_value, self.verdict, self.note)


def result_rows(result: GateResult) -> list[ResultRow]:
    """Return one row per compared metric and one per benchmark that was not compared."""
    rows = []
    for benchmark in result.benchmarks:
        if benchmark.status is not Status.COMPARED:
            rows.append(_benchmark_row(benchmark))
            continue
        for metric in benchmark.metrics:
            rows.append(_metric_row(benchmark, metric))
    return rows


def _benchmark_row(benchmark: BenchmarkResult) -> ResultRow:
    return ResultRow(benchmark.name, "all", "", "", "", "", benchmark.status.value, benchmark.note)


def _metric_row(benchmark: BenchmarkResult, metric: MetricResult) -> ResultRow:
    comparison = metric.comparison
    if comparison is None:
        return ResultRow(benchmark.name, metric.metric, "", "", "", "", metric.status.value, metric.note)

    return ResultRow(
        benchmark=benchmark.name,
        metric=metric.metric,
        baseline=format_quantity(comparison.base_median, metric.unit) + f" (n={comparison.base_rounds})",
        current=format_quantity(comparison.head_median, metric.unit) + f" (n={comparison.head_rounds})",
        ratio=format_ratio(comparison),
        p_value=format_p_value(comparison.p_value),
        verdict=comparison.verdict.value,
        note=format_note(comparison),
    )


def format_quantity(value: float, unit: str) -> str:
    """Format a value with a readable scale for seconds and bytes, and 4 significant digits otherwise."""
    if math.isnan(value):
        return "-"
    if unit == "s":
        for scale, label in _TIME_UNITS:
            if abs(value) >= scale or scale == _TIME_UNITS[-1][0]:
                return f"{value / scale:.4g} {label}"
    if unit in ("B", "bytes"):
        for scale, label in _BYTE_UNITS:
            if abs(value) >= scale:
                return f"{value / scale:.4g} {label}"
        return f"{value:.0f} B"
    return f"{value:.4g} {unit}".rstrip()


def format_ratio(comparison: SampleComparison) -> str:
    if comparison.ratio is None:
        return "-"
    if comparison.interval is None:
        return f"{comparison.ratio:.3f}"
    return f"{comparison.ratio:.3f} [{comparison.interval.low:.3f}, {comparison.interval.high:.3f}]"


def format_p_value(p_value: float | None) -> str:
    if p_value is None:
        return "-"
    if p_value < 1e-4:
        return "<0.0001"
    return f"{p_value:.4f}"


def format_note(comparison: SampleComparison) -> str:
    """Return the reason, plus the estimated extra rounds for inconclusive results."""
    if comparison.verdict is not Verdict.INCONCLUSIVE or comparison.more_rounds is None:
        return comparison.reason
    return f"{comparison.reason}; about {comparison.more_rounds} more rounds per side might decide it (estimate)"


def summary_line(result: GateResult) -> str:
    """Return one line with the outcome, its exit code and the verdict counts."""
    counts = ", ".join(f"{result.count(verdict)} {verdict.value}" for verdict in Verdict)
    return f"{result.outcome.value.upper()} (exit {result.outcome.exit_code}): {result.reason}; {counts}"


def thresholds_line(result: GateResult) -> str:
    thresholds = result.config.thresholds
    line = (
        f"alpha {thresholds.alpha:g}, min effect {thresholds.min_effect:.0%}, "
        f"{thresholds.confidence:.0%} bootstrap interval of {thresholds.resamples} resamples, seed {thresholds.seed}"
    )
    if result.config.overrides:
        line += f", {len(result.config.overrides)} override(s) from the config"
    return line


def mismatch_lines(result: GateResult) -> list[str]:
    """Return one sentence per mismatch, saying whether it was rejected or allowed."""
    lines = []
    for mismatch in result.mismatches:
        where = "whole run" if not mismatch.benchmarks else _benchmark_list(mismatch.benchmarks)
        if not mismatch.allowed:
            state = "rejected (different work is never compared)"
        elif result.mismatch_allowed:
            state = "allowed by allow_mismatch"
        else:
            state = "rejected"
        lines.append(f"{mismatch.subject}: base {mismatch.base}, head {mismatch.head} ({where}); {state}")
    return lines


def _benchmark_list(names: tuple[str, ...]) -> str:
    if len(names) <= 3:
        return ", ".join(names)
    return f"{', '.join(names[:3])} and {len(names) - 3} more"


def single_run_warning(result: GateResult) -> str | None:
    """Return a warning when a side contains a single run, so shifts between runs go unmeasured."""
    single = [side for side, sources in (("base", result.base_sources), ("head", result.head_sources)) if len(sources) == 1]
    if not single:
        return None
    subject = "base and head each contain" if len(single) == 2 else f"{single[0]} contains"
    return (
        f"{subject} a single run, so shifts of the whole machine between runs are not measured and only "
        "min_effect guards against them. Pool several runs per side for a verdict that accounts for them."
    )


def inconclusive_warning(result: GateResult) -> str | None:
    """Return a warning for a pass in which some compared metrics were left undecided."""
    compared = [metric for _, metric in result.metric_results() if metric.comparison is not None]
    undecided = result.count(Verdict.INCONCLUSIVE)
    if result.outcome is not Outcome.PASS or undecided == 0:
        return None
    return (
        f"{undecided} of {len(compared)} compared metrics are inconclusive. The pass shows that no regression "
        "was proven among them, not that there is none; more rounds or runs per side would decide them."
    )
