"""A regression gate for saved pytest-benchmark runs that decides on per-round data.

pytest-benchmark's own ``--benchmark-compare-fail`` checks one statistic against a fixed
percentage, which on shared CI runners fails on noise alone. This gate compares the
rounds themselves: the time of every round (``stats.data``, saved with
``--benchmark-save-data`` or ``--benchmark-json``) and every metric that perfsuite records
per round in ``extra_info["metrics"]``. A metric counts as slower only when the two-sided
Mann-Whitney U test gives p < alpha, the bootstrap interval on the ratio of medians
excludes 1, and the ratio is at least ``min_effect`` worse (see ``stats``).

Use from code (the CLI in ``perfsuite.cli`` does the same)::

    from perfsuite.compare import GateConfig, load_gate_config, run_gate
    from perfsuite.report import render_terminal

    result = run_gate("base/", "head.json", load_gate_config())
    print(render_terminal(result))
    raise SystemExit(result.outcome.exit_code)   # 0 pass, 1 regression, 2 cannot compare

Inside pytest, build the head side from the JSON document that pytest-benchmark is about
to save with ``parse_run_document(output_json, source="this run")`` and pass it to
``compare_runs(load_run(baseline_paths), head, config)``.

How to get verdicts a noisy runner cannot fake: measure base and head in the same job, on
the same runner, and save several runs per side. A side given as a folder pools its files,
and the bootstrap then resamples whole runs as well as rounds, so shifts of the whole
machine between runs widen the interval instead of passing as a change. With one run per
side nothing measures such shifts, and only ``min_effect`` guards against them.

Defaults: alpha 0.01, min_effect 0.05, 10000 resamples, 3 rounds at least.

- alpha 0.01: one gate run tests every metric of every benchmark (the full matrix is 27
  benchmarks, about 50 metrics), so 0.05 would flag a couple of metrics per run on pure
  chance wherever min_effect does not filter them. At 0.01 the smallest attainable p needs
  5 rounds per side (2 / C(10, 5) = 0.0079), which the full profile's generate phase has.
- min_effect 0.05: the smallest change worth failing a pull request over, and the level at
  which the A/A runs below stop producing "slower" among runs taken on a quiet machine.
- The A/A figures, their machine and their limits are in docs/gate-noise.md.
"""

from perfsuite.compare.config import GateConfig, ThresholdOverride, load_gate_config, parse_gate_table
from perfsuite.compare.errors import CompareError, GateConfigError, InvalidThresholdError, RunFileError
from perfsuite.compare.gate import (
    BenchmarkResult,
    GateResult,
    MetricResult,
    Mismatch,
    Outcome,
    Status,
    compare_runs,
    run_gate,
)
from perfsuite.compare.runs import Metric, SavedRun, load_run, parse_run_document, pool_runs
from perfsuite.compare.stats import Direction, SampleComparison, Thresholds, Verdict, compare_samples

__all__ = [
    "BenchmarkResult",
    "CompareError",
    "Direction",
    "GateConfig",
    "GateConfigError",
    "GateResult",
    "InvalidThresholdError",
    "Metric",
    "MetricResult",
    "Mismatch",
    "Outcome",
    "RunFileError",
    "SampleComparison",
    "SavedRun",
    "Status",
    "Thresholds",
    "ThresholdOverride",
    "Verdict",
    "compare_runs",
    "compare_samples",
    "load_gate_config",
    "load_run",
    "parse_gate_table",
    "parse_run_document",
    "pool_runs",
    "run_gate",
]
