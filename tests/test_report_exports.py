"""Exports of a saved run, checked against the documented shapes of Bencher's BMF and github-action-benchmark.

BMF (bencher.dev, Bencher Metric Format reference): an object of benchmark name -> object
of measure -> object with a required number "value" and optional numbers "lower_value"
and "upper_value". github-action-benchmark's custom tools: an array of objects with
string "name" and "unit", number "value", and optional strings "range" and "extra".
"""

from __future__ import annotations

import json

import pytest
from test_compare_support import benchmark_entry, metric, write_run

from perfsuite.compare.runs import load_run
from perfsuite.report.exports import (
    ExportFormat,
    GithubBenchmarkTool,
    to_bencher_metric_format,
    to_github_action_benchmark,
    write_export,
)

GENERATE = "benchmarks/test_generate.py::test_generate[torch-fp32-16]"
METRICS = {
    "time_to_first_token_s": metric([0.002, 0.003, 0.004]),
    "tokens_per_second": metric([100.0, 200.0, 300.0], unit="tokens/s", direction="higher"),
}


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_bencher_shape(document) -> None:
    assert isinstance(document, dict)
    for benchmark, measures in document.items():
        assert isinstance(benchmark, str) and benchmark
        assert isinstance(measures, dict)
        for slug, values in measures.items():
            assert isinstance(slug, str) and 0 < len(slug) <= 64
            assert is_number(values["value"])
            assert set(values) <= {"value", "lower_value", "upper_value"}
            assert all(is_number(number) for number in values.values())


def check_github_shape(document) -> None:
    assert isinstance(document, list)
    for entry in document:
        assert isinstance(entry["name"], str)
        assert isinstance(entry["unit"], str)
        assert is_number(entry["value"])
        assert set(entry) <= {"name", "unit", "value", "range", "extra"}
        assert isinstance(entry.get("range", ""), str)
        assert isinstance(entry.get("extra", ""), str)


@pytest.fixture
def run(tmp_path):
    path = write_run(tmp_path / "run.json", [benchmark_entry(data=[0.01, 0.02, 0.03, 0.04, 0.05], metrics=METRICS)])
    return load_run(path)


def test_bencher_shape(run):
    check_bencher_shape(to_bencher_metric_format(run))


def test_bencher_latency_nanoseconds(run):
    latency = to_bencher_metric_format(run)[GENERATE]["latency"]
    assert latency == {"value": pytest.approx(3.0e7), "lower_value": pytest.approx(2.0e7), "upper_value": pytest.approx(4.0e7)}


def test_bencher_metric_slugs(run):
    measures = to_bencher_metric_format(run)[GENERATE]
    assert set(measures) == {"latency", "time-to-first-token-s", "tokens-per-second"}
    assert measures["tokens-per-second"]["value"] == pytest.approx(200.0)


def test_github_smaller_shape(run):
    check_github_shape(to_github_action_benchmark(run, GithubBenchmarkTool.SMALLER_IS_BETTER))


def test_github_smaller_selects_lower(run):
    entries = to_github_action_benchmark(run, GithubBenchmarkTool.SMALLER_IS_BETTER)
    assert [entry["name"] for entry in entries] == [f"{GENERATE} time_s", f"{GENERATE} time_to_first_token_s"]
    assert entries[0]["value"] == pytest.approx(0.03)
    assert entries[0]["unit"] == "s"
    assert entries[0]["range"] == "± 0.01"


def test_github_bigger_selects_higher(run):
    entries = to_github_action_benchmark(run, GithubBenchmarkTool.BIGGER_IS_BETTER)
    check_github_shape(entries)
    assert [entry["name"] for entry in entries] == [f"{GENERATE} tokens_per_second"]


def test_github_extra_names_setup(run):
    extra = to_github_action_benchmark(run)[0]["extra"]
    assert "backend: torch-fp32" in extra
    assert "rounds: 5 in 1 run(s)" in extra


def test_write_export_file(run, tmp_path):
    output = tmp_path / "bmf.json"
    write_export(run, ExportFormat.BENCHER, output)
    check_bencher_shape(json.loads(output.read_text(encoding="utf-8")))


def test_write_export_stdout(run, capsys):
    write_export(run, ExportFormat.GITHUB_ACTION_BENCHMARK, "-")
    check_github_shape(json.loads(capsys.readouterr().out))
