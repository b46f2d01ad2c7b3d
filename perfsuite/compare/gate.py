"""Compare a head run against a base run and decide PASS, REGRESSION or CANNOT_COMPARE.

Timings are comparable only on the same machine, libraries, model, backend settings and
work. Differences in the first four reject the comparison unless ``allow_mismatch`` is
set, and the report lists them either way. Different work (phase, prompt tokens, new
tokens, batch size, backend) is never compared, because the figures measure different
things.

Outcomes and exit codes:

- PASS (0): every benchmark of the base was compared and no metric is ``slower``.
- REGRESSION (1): at least one compared metric is ``slower``.
- CANNOT_COMPARE (2): no regression was found, but something could not be checked: a
  rejected mismatch, a benchmark or metric missing in head, an unreadable entry, or
  nothing compared at all.

Benchmarks only in head ("no baseline") are listed and do not change the outcome, unless
nothing else was compared. Inconclusive metrics are listed and do not fail the gate.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from perfsuite.compare.config import GateConfig
from perfsuite.compare.runs import BenchmarkRecord, SavedRun, load_run
from perfsuite.compare.stats import SampleComparison, Thresholds, Verdict, compare_samples

logger = logging.getLogger(__name__)


class Outcome(enum.Enum):
    """The gate's overall result. ``exit_code`` is what the command line returns for it."""

    PASS = "pass"
    REGRESSION = "regression"
    CANNOT_COMPARE = "cannot compare"

    @property
    def exit_code(self) -> int:
        return {Outcome.PASS: 0, Outcome.REGRESSION: 1, Outcome.CANNOT_COMPARE: 2}[self]


class Status(enum.Enum):
    """Whether a benchmark or metric was compared, and why not."""

    COMPARED = "compared"
    NO_BASELINE = "no baseline"
    MISSING_IN_HEAD = "missing in head"
    UNREADABLE = "unreadable"
    MISMATCH = "setup mismatch"


# Statuses that leave something unchecked, so the gate cannot pass.
BLOCKING_STATUSES = frozenset({Status.MISSING_IN_HEAD, Status.UNREADABLE, Status.MISMATCH})


@dataclass(frozen=True)
class Mismatch:
    """One difference between base and head that makes timings incomparable.

    ``benchmarks`` is empty for run-level differences (machine, libraries). ``allowed``
    is false for differences in the work itself, which ``allow_mismatch`` cannot override.
    """

    subject: str
    base: str
    head: str
    benchmarks: tuple[str, ...] = ()
    allowed: bool = True


@dataclass(frozen=True)
class MetricResult:
    """One metric of one benchmark: the statistics when compared, else the reason."""

    metric: str
    unit: str
    status: Status
    thresholds: Thresholds
    comparison: SampleComparison | None = None
    note: str = ""

    @property
    def verdict(self) -> Verdict | None:
        return self.comparison.verdict if self.comparison else None


@dataclass(frozen=True)
class BenchmarkResult:
    """One benchmark: its status and, when compared, one result per metric."""

    fullname: str
    name: str
    group: str | None
    status: Status
    metrics: tuple[MetricResult, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class GateResult:
    """The comparison of two sides, ready for the reports."""

    outcome: Outcome
    benchmarks: tuple[BenchmarkResult, ...]
    mismatches: tuple[Mismatch, ...]
    mismatch_allowed: bool
    config: GateConfig
    base_sources: tuple[str, ...]
    head_sources: tuple[str, ...]
    reason: str

    def metric_results(self) -> list[tuple[BenchmarkResult, MetricResult]]:
        return [(benchmark, metric) for benchmark in self.benchmarks for metric in benchmark.metrics]

    def count(self, verdict: Verdict) -> int:
        return sum(1 for _, metric in self.metric_results() if metric.verdict is verdict)


def run_gate(
    base_paths: Sequence[str | Path] | str | Path,
    head_paths: Sequence[str | Path] | str | Path,
    config: GateConfig | None = None,
) -> GateResult:
    """Load both sides from files or folders and compare them. Raises RunFileError for unusable files."""
    return compare_runs(load_run(base_paths), load_run(head_paths), config or GateConfig())


def compare_runs(base: SavedRun, head: SavedRun, config: GateConfig | None = None) -> GateResult:
    """Compare every benchmark of ``head`` with the same ``fullname`` in ``base``."""
    config = config or GateConfig()
    mismatches = [
        Mismatch(subject, base_value, head_value)
        for subject, base_value, head_value in base.machine.differences(head.machine)
    ]

    if mismatches and not config.allow_mismatch:
        logger.info("rejected: %d run-level difference(s) between base and head", len(mismatches))
        return _result(Outcome.CANNOT_COMPARE, (), mismatches, config, base, head, "machine or libraries differ")

    results = []
    for fullname in _ordered_names(base, head):
        result, found = _compare_benchmark(fullname, base, head, config)
        results.append(result)
        mismatches.extend(found)
    results.extend(_unreadable_results(base, head))

    outcome, reason = _decide_outcome(results)
    return _result(outcome, tuple(results), _grouped(mismatches), config, base, head, reason)


def _result(
    outcome: Outcome,
    results: tuple[BenchmarkResult, ...],
    mismatches: list[Mismatch],
    config: GateConfig,
    base: SavedRun,
    head: SavedRun,
    reason: str,
) -> GateResult:
    return GateResult(
        outcome=outcome,
        benchmarks=results,
        mismatches=tuple(mismatches),
        mismatch_allowed=config.allow_mismatch,
        config=config,
        base_sources=base.sources,
        head_sources=head.sources,
        reason=reason,
    )


def _ordered_names(base: SavedRun, head: SavedRun) -> list[str]:
    names = list(base.benchmarks)
    names.extend(name for name in head.benchmarks if name not in base.benchmarks)
    return names


def _compare_benchmark(
    fullname: str, base: SavedRun, head: SavedRun, config: GateConfig
) -> tuple[BenchmarkResult, list[Mismatch]]:
    base_record = base.benchmarks.get(fullname)
    head_record = head.benchmarks.get(fullname)

    if head_record is None:
        note = "only in base; if it was removed on purpose, save a new baseline"
        return _not_compared(base_record, Status.MISSING_IN_HEAD, note), []
    if base_record is None:
        return _not_compared(head_record, Status.NO_BASELINE, "only in head; nothing to compare with"), []

    mismatches = _setup_mismatches(base_record, head_record)
    rejected = [item for item in mismatches if not (item.allowed and config.allow_mismatch)]
    if rejected:
        subjects = ", ".join(item.subject for item in rejected)
        return _not_compared(head_record, Status.MISMATCH, f"different {subjects} in base and head"), mismatches

    metrics = _compare_metrics(base_record, head_record, config)
    result = BenchmarkResult(fullname, head_record.name, head_record.group, Status.COMPARED, metrics)
    return result, mismatches


def _not_compared(record: BenchmarkRecord, status: Status, note: str) -> BenchmarkResult:
    return BenchmarkResult(record.fullname, record.name, record.group, status, (), note)


def _setup_mismatches(base: BenchmarkRecord, head: BenchmarkRecord) -> list[Mismatch]:
    found = []
    base_setup, head_setup = base.setup, head.setup
    names = (base.fullname,)

    for subject, base_value, head_value in (
        ("backend", base_setup.backend, head_setup.backend),
        ("phase", base_setup.phase, head_setup.phase),
        ("prompt tokens", base_setup.prompt_tokens, head_setup.prompt_tokens),
        ("new tokens", base_setup.new_tokens, head_setup.new_tokens),
        ("batch size", base_setup.batch_size, head_setup.batch_size),
    ):
        if base_value != head_value:
            found.append(Mismatch(subject, str(base_value), str(head_value), names, allowed=False))

    # Runs saved before the work fingerprint existed lack it, so it is compared only when both have it.
    base_work, head_work = base_setup.work_fingerprint, head_setup.work_fingerprint
    if base_work is not None and head_work is not None and base_work != head_work:
        found.append(Mismatch("work fingerprint (input tokens)", base_work, head_work, names, allowed=False))

    for subject, base_value, head_value in (
        ("model fingerprint", base_setup.model_fingerprint, head_setup.model_fingerprint),
        ("threads", base_setup.threads, head_setup.threads),
    ):
        if base_value != head_value:
            found.append(Mismatch(subject, str(base_value), str(head_value), names))

    settings = sorted(set(base_setup.backend_settings) | set(head_setup.backend_settings))
    for key in settings:
        base_value = base_setup.backend_settings.get(key)
        head_value = head_setup.backend_settings.get(key)
        if base_value != head_value:
            found.append(Mismatch(f"backend setting {key}", str(base_value), str(head_value), names))
    return found


def _compare_metrics(base: BenchmarkRecord, head: BenchmarkRecord, config: GateConfig) -> tuple[MetricResult, ...]:
    names = (head.name, head.fullname, head.group or "")
    metric_names = list(base.metrics)
    metric_names.extend(name for name in head.metrics if name not in base.metrics)
    problem_names = [name for name in {**base.metric_problems, **head.metric_problems} if name not in metric_names]

    results = []
    for metric_name in metric_names + problem_names:
        thresholds = config.thresholds_for(names, metric_name)
        results.append(_compare_metric(metric_name, base, head, thresholds))
    return tuple(results)


def _compare_metric(name: str, base: BenchmarkRecord, head: BenchmarkRecord, thresholds: Thresholds) -> MetricResult:
    problem = head.metric_problems.get(name) or base.metric_problems.get(name)
    base_metric = base.metrics.get(name)
    head_metric = head.metrics.get(name)
    known = head_metric or base_metric
    unit = known.unit if known is not None else ""

    if problem:
        return MetricResult(name, unit, Status.UNREADABLE, thresholds, note=problem)
    if base_metric is None:
        return MetricResult(name, unit, Status.NO_BASELINE, thresholds, note="only in head")
    if head_metric is None:
        note = "only in base; if it was removed on purpose, save a new baseline"
        return MetricResult(name, unit, Status.MISSING_IN_HEAD, thresholds, note=note)
    if base_metric.direction is not head_metric.direction:
        note = f"direction is {base_metric.direction.value} in base but {head_metric.direction.value} in head"
        return MetricResult(name, unit, Status.MISMATCH, thresholds, note=note)

    comparison = compare_samples(
        base_metric.values,
        head_metric.values,
        head_metric.direction,
        thresholds,
        base_run_sizes=base_metric.run_sizes,
        head_run_sizes=head_metric.run_sizes,
    )
    logger.debug("%s %s: %s (%s)", head.fullname, name, comparison.verdict.value, comparison.reason)
    return MetricResult(name, unit, Status.COMPARED, thresholds, comparison, comparison.reason)


def _unreadable_results(base: SavedRun, head: SavedRun) -> list[BenchmarkResult]:
    results = []
    for side, run in (("base", base), ("head", head)):
        for entry in run.unreadable:
            note = f"in {side} file {entry.source}: {entry.reason}"
            results.append(BenchmarkResult(entry.fullname, entry.fullname, None, Status.UNREADABLE, (), note))
    return results


def _decide_outcome(results: list[BenchmarkResult]) -> tuple[Outcome, str]:
    metric_results = [metric for result in results for metric in result.metrics]
    slower = [metric for metric in metric_results if metric.verdict is Verdict.SLOWER]
    if slower:
        return Outcome.REGRESSION, f"{len(slower)} metric(s) slower"

    blocked = [result for result in results if result.status in BLOCKING_STATUSES]
    blocked_metrics = [metric for metric in metric_results if metric.status in BLOCKING_STATUSES]
    if blocked or blocked_metrics:
        return Outcome.CANNOT_COMPARE, f"{len(blocked) + len(blocked_metrics)} benchmark(s) or metric(s) not compared"

    if not any(metric.status is Status.COMPARED for metric in metric_results):
        return Outcome.CANNOT_COMPARE, "no benchmark of head has a baseline"
    return Outcome.PASS, "no metric slower"


def _grouped(mismatches: list[Mismatch]) -> list[Mismatch]:
    """Merge benchmark-level mismatches with the same subject and values into one entry."""
    merged: dict[tuple[str, str, str, bool], list[str]] = {}
    run_level = []
    for item in mismatches:
        if not item.benchmarks:
            run_level.append(item)
            continue
        key = (item.subject, item.base, item.head, item.allowed)
        merged.setdefault(key, []).extend(item.benchmarks)

    grouped = [Mismatch(subject, base, head, tuple(names), allowed) for (subject, base, head, allowed), names in merged.items()]
    return run_level + grouped

