"""Export a saved run to the JSON formats of Bencher and of github-action-benchmark.

Bencher Metric Format (BMF), as documented at bencher.dev/docs/reference/bencher-metric-format:
an object of benchmark name -> measure slug -> {"value", "lower_value"?, "upper_value"?},
numbers only. Here the value is the median of the rounds and the bounds are the 25th and
75th percentiles. ``time_s`` goes to Bencher's built-in ``latency`` measure, whose unit is
nanoseconds, so it is converted; every other metric keeps its own unit under a kebab-case
slug of its name (``tokens_per_second`` -> ``tokens-per-second``), which Bencher creates on
first upload.

github-action-benchmark's ``customSmallerIsBetter`` and ``customBiggerIsBetter`` tools, as
read in that action's source (its custom-result extractor): a JSON array of
{"name": str, "unit": str, "value": number, "range"?: str, "extra"?: str}. One file serves
one tool, so each export contains the metrics of one direction. The value is the median; the
range is "± half the interquartile range".
"""

from __future__ import annotations

import enum
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np

from perfsuite.compare.runs import TIME_METRIC, BenchmarkRecord, Metric, SavedRun
from perfsuite.compare.stats import Direction
from perfsuite.errors import PerfsuiteError

logger = logging.getLogger(__name__)

BENCHER_LATENCY_SLUG = "latency"
NANOSECONDS_PER_SECOND = 1e9


class ExportWriteError(PerfsuiteError, OSError):
    """The export file could not be written."""


class ExportFormat(enum.Enum):
    """A target format of ``perfsuite export``."""

    BENCHER = "bencher"
    GITHUB_ACTION_BENCHMARK = "github-action-benchmark"


class GithubBenchmarkTool(enum.Enum):
    """The github-action-benchmark ``tool`` input the export is meant for."""

    SMALLER_IS_BETTER = "customSmallerIsBetter"
    BIGGER_IS_BETTER = "customBiggerIsBetter"

    @property
    def direction(self) -> Direction:
        return Direction.LOWER if self is GithubBenchmarkTool.SMALLER_IS_BETTER else Direction.HIGHER


def to_bencher_metric_format(run: SavedRun) -> dict[str, dict[str, dict[str, float]]]:
    """Return the run as BMF: fullname -> measure slug -> median with interquartile bounds."""
    document: dict[str, dict[str, dict[str, float]]] = {}
    for record in run.benchmarks.values():
        measures = {}
        for metric in record.metrics.values():
            if not metric.values:
                continue
            slug, scale = _bencher_measure(metric)
            low, middle, high = _quartiles(metric)
            measures[slug] = {"value": middle * scale, "lower_value": low * scale, "upper_value": high * scale}
        document[record.fullname] = measures
    return document


def _bencher_measure(metric: Metric) -> tuple[str, float]:
    if metric.name == TIME_METRIC:
        return BENCHER_LATENCY_SLUG, NANOSECONDS_PER_SECOND
    return metric.name.replace("_", "-").lower(), 1.0


def to_github_action_benchmark(
    run: SavedRun, tool: GithubBenchmarkTool = GithubBenchmarkTool.SMALLER_IS_BETTER
) -> list[dict[str, Any]]:
    """Return the metrics of ``tool``'s direction as github-action-benchmark custom entries."""
    entries = []
    for record in run.benchmarks.values():
        for metric in record.metrics.values():
            if metric.direction is not tool.direction or not metric.values:
                continue
            low, middle, high = _quartiles(metric)
            entries.append(
                {
                    "name": f"{record.fullname} {metric.name}",
                    "unit": metric.unit,
                    "value": middle,
                    "range": f"± {(high - low) / 2:.6g}",
                    "extra": _extra_text(record, metric),
                }
            )
    return entries


def _extra_text(record: BenchmarkRecord, metric: Metric) -> str:
    setup = record.setup
    lines = [
        f"rounds: {len(metric.values)} in {len(metric.runs)} run(s)",
        f"backend: {setup.backend}",
        f"group: {record.group}",
        f"model fingerprint: {setup.model_fingerprint}",
        f"threads: {setup.threads}",
    ]
    return "\n".join(lines)


def _quartiles(metric: Metric) -> tuple[float, float, float]:
    low, middle, high = np.quantile(np.asarray(metric.values, dtype=np.float64), [0.25, 0.5, 0.75])
    return float(low), float(middle), float(high)


def write_export(
    run: SavedRun,
    export_format: ExportFormat,
    output: str | Path,
    tool: GithubBenchmarkTool = GithubBenchmarkTool.SMALLER_IS_BETTER,
) -> None:
    """Write the export as JSON to ``output``, or to standard output when it is "-"."""
    if export_format is ExportFormat.BENCHER:
        document: object = to_bencher_metric_format(run)
    else:
        document = to_github_action_benchmark(run, tool)
        if not document:
            logger.warning("no metric of %s's direction in %s; the export is an empty list", tool.value, run.sources)

    text = json.dumps(document, indent=2) + "\n"
    if str(output) == "-":
        sys.stdout.write(text)
        return
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as error:
        raise ExportWriteError(f"{output}: cannot write the export ({error}); check the folder exists and is writable") from None
