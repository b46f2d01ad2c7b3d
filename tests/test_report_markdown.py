"""The Markdown report of the gate, rendered from real comparisons."""

from __future__ import annotations

import copy

from test_compare_support import MACHINE_INFO, benchmark_entry, metric, noisy_rounds, write_run

from perfsuite.compare.config import GateConfig
from perfsuite.compare.gate import GateResult, run_gate
from perfsuite.compare.stats import Thresholds
from perfsuite.report.markdown import render_markdown

FAST = GateConfig(thresholds=Thresholds(resamples=500))


def compared(tmp_path, head_median=0.02, config=FAST, head_machine=None, head_rounds=20) -> GateResult:
    base_metrics = {"tokens_per_second": metric(noisy_rounds(800.0, 20, seed=3), "tokens/s", "higher")}
    head_metrics = {"tokens_per_second": metric(noisy_rounds(800.0, head_rounds, seed=4), "tokens/s", "higher")}
    base = write_run(tmp_path / "base.json", [benchmark_entry(data=noisy_rounds(0.01, 20, seed=1), metrics=base_metrics)])
    head_entry = benchmark_entry(data=noisy_rounds(head_median, head_rounds, seed=2), metrics=head_metrics)
    head = write_run(tmp_path / "head.json", [head_entry], **(head_machine or {}))
    return run_gate(base, head, config)


def table_lines(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("|")]


def test_markdown_heading_outcome(tmp_path):
    markdown = render_markdown(compared(tmp_path))
    assert markdown.startswith("### perfsuite regression gate: REGRESSION")


def test_markdown_table_columns(tmp_path):
    lines = table_lines(render_markdown(compared(tmp_path)))
    assert lines[0] == "| benchmark | metric | baseline median | current median | ratio (CI) | p | verdict | note |"
    assert lines[1].count("---") == 8


def test_markdown_row_per_metric(tmp_path):
    lines = table_lines(render_markdown(compared(tmp_path)))
    assert len(lines) == 4
    assert "time\\_s" in lines[2]
    assert "tokens\\_per\\_second" in lines[3]


def test_markdown_slower_bold(tmp_path):
    row = table_lines(render_markdown(compared(tmp_path)))[2]
    assert "**slower**" in row


def test_markdown_escapes_pipes(tmp_path):
    base = write_run(tmp_path / "base.json", [benchmark_entry(name="test_generate[a|b-16]", data=noisy_rounds(0.01, 20, seed=1))])
    head = write_run(tmp_path / "head.json", [benchmark_entry(name="test_generate[a|b-16]", data=noisy_rounds(0.01, 20, seed=2))])
    row = table_lines(render_markdown(run_gate(base, head, FAST)))[2]
    assert "a\\|b" in row
    assert row.count(" | ") == 7


def test_markdown_inconclusive_note(tmp_path):
    base = write_run(tmp_path / "base.json", [benchmark_entry(data=noisy_rounds(0.01, 6, seed=1, spread=0.15))])
    head = write_run(tmp_path / "head.json", [benchmark_entry(data=noisy_rounds(0.01, 6, seed=2, spread=0.15))])
    markdown = render_markdown(run_gate(base, head, FAST))
    assert "inconclusive" in table_lines(markdown)[2]
    assert "more rounds per side might decide it (estimate)" in markdown


def test_markdown_lists_rejected_mismatch(tmp_path):
    machine = copy.deepcopy(MACHINE_INFO)
    machine["cpu"]["count"] = 8
    markdown = render_markdown(compared(tmp_path, head_machine=machine))
    assert "#### Mismatches\n" in markdown
    assert "CPU count: base 2, head 8 (whole run); rejected" in markdown


def test_markdown_lists_allowed_mismatch(tmp_path):
    machine = copy.deepcopy(MACHINE_INFO)
    machine["cpu"]["count"] = 8
    config = GateConfig(thresholds=Thresholds(resamples=500), allow_mismatch=True)
    markdown = render_markdown(compared(tmp_path, config=config, head_machine=machine))
    assert "allow\\_mismatch is on, so differences marked allowed were compared anyway." in markdown
    assert "allowed by allow\\_mismatch" in markdown


def test_markdown_single_run_note(tmp_path):
    markdown = render_markdown(compared(tmp_path))
    assert "base and head each contain a single run" in markdown


def test_markdown_warns_inconclusive_pass(tmp_path):
    base = write_run(tmp_path / "base.json", [benchmark_entry(data=noisy_rounds(0.01, 6, seed=1, spread=0.15))])
    head = write_run(tmp_path / "head.json", [benchmark_entry(data=noisy_rounds(0.01, 6, seed=2, spread=0.15))])
    markdown = render_markdown(run_gate(base, head, FAST))
    assert "1 of 1 compared metrics are inconclusive" in markdown


def test_markdown_no_inconclusive_warning_on_regression(tmp_path):
    assert "are inconclusive" not in render_markdown(compared(tmp_path))
