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

- alpha 0.01: one gate run tests every metric of every benchmark (dozens in the full
  matrix), so at 0.05 a few would pass the U test on chance alone wherever min_effect does
  not filter them. At 0.01 p can only go below alpha with 5 or more rounds per side
  (2 / C(10, 5) = 0.0079), so the quick profile's 3 rounds need pooled runs.
- min_effect 0.05 is a policy choice, the smallest slowdown worth failing a pull request
  over. The A/A runs below could not set it: between single runs the machine itself
  shifted medians by 2x and more, far beyond any useful threshold.
- The run-level bootstrap, not the thresholds, is what kept A/A comparisons quiet.

A/A measurements (same code, quick profile, torch-fp32, 2 threads, synthetic models) on a
2-vCPU AMD EPYC VM that other test runs shared, with a 1-minute load average of 1.9 to 5:

- Sequential single runs: the median of one benchmark moved between two runs by a median
  of 4% to 8% (tokenize) and 14% (generate, distilgpt2 geometry), with 90th percentiles of
  50% to 93%. First-token times of the tiny model switched between about 1.5 ms and
  130 ms from run to run. Gating single runs against each other flagged a regression in
  9 of 34 pairs, always on tokenize, the only phase with enough rounds (20) for p to reach
  alpha within one run. The flagged shifts were 1.2x to 1.95x, so min_effect 0.20 flagged
  the same 9 pairs.
- Three alternating pairs of runs, each side pooled: 0 of 5 A/A trials flagged a
  regression, but all 30 metrics were inconclusive, so those passes showed nothing either
  way. With a 20% slowdown injected into torch-fp32 (PERFSUITE_TEST_SLOWDOWN), 1 of 3
  trials flagged it, on first-token and decode metrics. Tokenize, which the slowdown does
  not touch, was never flagged.

NOTE: these figures come from a loaded shared machine. A dedicated runner should show far
smaller run-to-run shifts and so more decided verdicts; they were not measured there.
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
