"""Tests for the self-contained HTML report, on the full run recorded in docs/runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from perfsuite.cli import main
from perfsuite.compare.gate import run_gate
from perfsuite.compare.runs import load_run
from perfsuite.report.html import render_report

RECORDED_RUN = Path(__file__).resolve().parent.parent / "docs" / "runs" / "full-synthetic-distilgpt2.json"


@pytest.fixture(scope="module")
def recorded():
    return load_run(RECORDED_RUN)


def _svg_titles(page: str) -> list[str]:
    return re.findall(r"<h2>([^<]+)</h2>", page)


def test_report_has_every_chart(recorded):
    page = render_report(recorded)

    assert _svg_titles(page) == [
        "tokenize latency",
        "first-token latency",
        "generate latency",
        "Latency against prompt length",
        "Speedup over torch-fp32",
    ]
    assert page.count("<svg") == 5


def test_report_is_self_contained(recorded):
    page = render_report(recorded)

    assert "<script" not in page
    assert not re.search(r"""(src|href)=["']https?://""", page)


def test_report_lists_backends(recorded):
    page = render_report(recorded)

    for backend_id in ("torch-fp32", "torch-int8-dynamic", "onnxruntime", "onnxruntime-int8"):
        assert backend_id in page


def test_report_with_comparison(recorded):
    comparison = run_gate(RECORDED_RUN, RECORDED_RUN)

    page = render_report(recorded, comparison)

    assert "Comparison with the base" in _svg_titles(page)
    assert f"Gate: {comparison.outcome.value}" in page


def test_report_command_writes_file(tmp_path, capsys):
    output = tmp_path / "nested" / "report.html"

    code = main(["report", str(RECORDED_RUN), "--output", str(output)])

    assert code == 0
    assert output.read_text().startswith("<!DOCTYPE html>")
    assert str(output) in capsys.readouterr().out


def test_report_command_missing_run(tmp_path, capsys):
    missing = tmp_path / "absent.json"

    code = main(["report", str(missing), "--output", str(tmp_path / "r.html")])

    assert code == 2
    assert str(missing) in capsys.readouterr().err


def test_report_names_synthetic_model(recorded):
    page = render_report(recorded)

    assert "Model: synthetic:distilgpt2" in page
    assert "SYNTHETIC weights" in page
