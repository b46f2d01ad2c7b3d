"""The plain-text terminal report of the gate."""

from __future__ import annotations

from test_compare_support import benchmark_entry, metric, noisy_rounds, write_run

from perfsuite.compare.config import GateConfig
from perfsuite.compare.gate import GateResult, run_gate
from perfsuite.compare.stats import Thresholds
from perfsuite.report.terminal import render_terminal

FAST = GateConfig(thresholds=Thresholds(resamples=500))


def compared(tmp_path) -> GateResult:
    base_metrics = {"tokens_per_second": metric(noisy_rounds(800.0, 20, seed=3), "tokens/s", "higher")}
    head_metrics = {"tokens_per_second": metric(noisy_rounds(800.0, 20, seed=4), "tokens/s", "higher")}
    base = write_run(tmp_path / "base.json", [benchmark_entry(data=noisy_rounds(0.01, 20, seed=1), metrics=base_metrics)])
    head = write_run(tmp_path / "head.json", [benchmark_entry(data=noisy_rounds(0.02, 20, seed=2), metrics=head_metrics)])
    return run_gate(base, head, FAST)


def test_terminal_aligned_columns(tmp_path):
    lines = render_terminal(compared(tmp_path)).splitlines()
    assert lines[0].split()[:2] == ["benchmark", "metric"]
    assert lines[1].index("time_s") == lines[0].index("metric")
    assert lines[2].index("tokens_per_second") == lines[0].index("metric")


def test_terminal_ends_with_outcome(tmp_path):
    text = render_terminal(compared(tmp_path))
    assert text.splitlines()[-1].startswith("REGRESSION (exit 1)")
