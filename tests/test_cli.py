"""The perfsuite command line: exit codes, outputs and error messages, in-process and as a subprocess."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_compare_support import MACHINE_INFO, benchmark_entry, metric, noisy_rounds, write_run

from perfsuite.cli import main

REPOSITORY = Path(__file__).resolve().parent.parent
FAST_CONFIG = "[tool.perfsuite.gate]\nresamples = 500\n"


@pytest.fixture(autouse=True)
def no_step_summary(monkeypatch):
    """Keep in-process runs from appending to a real GitHub job summary when the tests run in CI."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "pyproject.toml"
    path.write_text(FAST_CONFIG, encoding="utf-8")
    return path


def write_side(path, median=0.01, seed=1, **machine_changes):
    metrics = {"tokens_per_second": metric(noisy_rounds(800.0, 20, seed=seed + 100), "tokens/s", "higher")}
    entry = benchmark_entry(data=noisy_rounds(median, 20, seed=seed), metrics=metrics)
    return write_run(path, [entry], **machine_changes)


@pytest.fixture
def base(tmp_path):
    return write_side(tmp_path / "base.json", seed=1)


@pytest.fixture
def same(tmp_path):
    return write_side(tmp_path / "same.json", seed=2)


@pytest.fixture
def slower(tmp_path):
    return write_side(tmp_path / "slower.json", median=0.02, seed=3)


@pytest.fixture
def other_machine(tmp_path):
    machine = copy.deepcopy(MACHINE_INFO)
    machine["cpu"]["count"] = 8
    return write_side(tmp_path / "other.json", seed=4, **machine)


def test_compare_pass_exit_0(base, same, config, capsys):
    assert main(["compare", str(base), str(same), "--config", str(config)]) == 0
    assert "PASS (exit 0)" in capsys.readouterr().out


def test_compare_regression_exit_1(base, slower, config, capsys):
    assert main(["compare", str(base), str(slower), "--config", str(config)]) == 1
    assert "slower" in capsys.readouterr().out


def test_compare_mismatch_exit_2(base, other_machine, config, capsys):
    assert main(["compare", str(base), str(other_machine), "--config", str(config)]) == 2
    assert "CPU count: base 2, head 8" in capsys.readouterr().out


def test_compare_allow_mismatch(base, other_machine, config, capsys):
    assert main(["compare", str(base), str(other_machine), "--config", str(config), "--allow-mismatch"]) == 0
    assert "allowed by allow_mismatch" in capsys.readouterr().out


def test_compare_writes_markdown(base, same, config, tmp_path):
    report = tmp_path / "report.md"
    main(["compare", str(base), str(same), "--config", str(config), "--markdown", str(report)])
    assert report.read_text(encoding="utf-8").startswith("### perfsuite regression gate: PASS")


def test_compare_appends_step_summary(base, same, config, tmp_path, monkeypatch):
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    main(["compare", str(base), str(same), "--config", str(config)])
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("earlier step\n")
    assert "### perfsuite regression gate: PASS" in text


def test_compare_min_effect_option(base, slower, config):
    # A doubling is within a 150% minimum effect, so nothing counts as slower.
    assert main(["compare", str(base), str(slower), "--config", str(config), "--min-effect", "0.99"]) == 0


def test_compare_config_override(base, slower, tmp_path):
    config = tmp_path / "override.toml"
    config.write_text(
        FAST_CONFIG + '[[tool.perfsuite.gate.overrides]]\nmatch = "test_generate*"\nmin_effect = 0.99\n', encoding="utf-8"
    )
    assert main(["compare", str(base), str(slower), "--config", str(config)]) == 0


def test_compare_invalid_alpha(base, same, config, capsys):
    assert main(["compare", str(base), str(same), "--config", str(config), "--alpha", "2"]) == 2
    assert capsys.readouterr().err.startswith("perfsuite: error: alpha must be between 0 and 1")


def test_compare_alpha_not_number(base, same, capsys):
    assert main(["compare", str(base), str(same), "--alpha", "often"]) == 2
    assert "perfsuite: error: argument --alpha: invalid float value: 'often'" in capsys.readouterr().err


def test_compare_missing_file(base, tmp_path, capsys):
    missing = tmp_path / "absent.json"
    assert main(["compare", str(base), str(missing)]) == 2
    assert capsys.readouterr().err == f"perfsuite: error: {missing}: file not found; check the path\n"


def test_compare_without_data(base, tmp_path, capsys):
    entry = benchmark_entry()
    del entry["stats"]["data"]
    head = write_run(tmp_path / "nodata.json", [entry])
    assert main(["compare", str(base), str(head)]) == 2
    assert "--benchmark-save-data" in capsys.readouterr().err


def test_compare_missing_config(base, same, tmp_path, capsys):
    assert main(["compare", str(base), str(same), "--config", str(tmp_path / "nope.toml")]) == 2
    assert "config file not found" in capsys.readouterr().err


def test_markdown_unwritable(base, same, config, tmp_path, capsys):
    target = tmp_path / "missing-folder" / "report.md"
    assert main(["compare", str(base), str(same), "--config", str(config), "--markdown", str(target)]) == 2
    assert "cannot write the report" in capsys.readouterr().err


def test_no_command(capsys):
    assert main([]) == 2
    assert capsys.readouterr().err.startswith("perfsuite: error: ")


def test_help_exit_0(capsys):
    assert main(["compare", "--help"]) == 0
    assert "--min-effect" in capsys.readouterr().out


def test_export_bencher_file(base, tmp_path):
    output = tmp_path / "bmf.json"
    assert main(["export", "--format", "bencher", str(base), "-o", str(output)]) == 0
    document = json.loads(output.read_text(encoding="utf-8"))
    assert set(document["benchmarks/test_generate.py::test_generate[torch-fp32-16]"]) == {"latency", "tokens-per-second"}


def test_export_github_bigger(base, capsys):
    assert main(["export", "--format", "github-action-benchmark", "--tool", "customBiggerIsBetter", str(base)]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert [entry["unit"] for entry in entries] == ["tokens/s"]


def test_export_tool_with_bencher(base, capsys):
    assert main(["export", "--format", "bencher", "--tool", "customBiggerIsBetter", str(base)]) == 2
    assert "--tool applies to --format github-action-benchmark only" in capsys.readouterr().err


def test_export_unknown_format(base, capsys):
    assert main(["export", "--format", "csv", str(base)]) == 2
    assert "invalid choice: 'csv'" in capsys.readouterr().err


def run_module(*arguments: str, cwd: Path) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    environment.pop("GITHUB_STEP_SUMMARY", None)
    return subprocess.run(
        [sys.executable, "-m", "perfsuite.cli", *arguments],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_subprocess_exit_codes(base, same, slower, other_machine, config, tmp_path):
    common = ["--config", str(config)]
    assert run_module("compare", str(base), str(same), *common, cwd=tmp_path).returncode == 0
    assert run_module("compare", str(base), str(slower), *common, cwd=tmp_path).returncode == 1
    assert run_module("compare", str(base), str(other_machine), *common, cwd=tmp_path).returncode == 2


def test_subprocess_error_on_stderr(tmp_path):
    completed = run_module("compare", "absent-base.json", "absent-head.json", cwd=tmp_path)
    assert completed.returncode == 2
    assert completed.stderr == "perfsuite: error: absent-base.json: file not found; check the path\n"
    assert completed.stdout == ""


def test_real_run_against_itself(tmp_path):
    """A run saved by the real benchmark suite loads, gates against itself as PASS, and exports."""
    saved = tmp_path / "real.json"
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "PERFSUITE_CACHE_DIR": str(tmp_path / "cache")}
    benchmark_run = subprocess.run(
        [
            sys.executable, "-m", "pytest", "benchmarks/", "-q", "-p", "no:cacheprovider",
            "--perf-quick", "--perf-model", "synthetic:tiny", "--perf-backends", "torch-fp32",
            "--benchmark-json", str(saved),
        ],
        cwd=REPOSITORY,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert benchmark_run.returncode == 0, benchmark_run.stdout[-2000:] + benchmark_run.stderr[-2000:]

    completed = run_module("compare", str(saved), str(saved), "--markdown", str(tmp_path / "self.md"), cwd=tmp_path)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "0 slower" in completed.stdout

    exported = run_module("export", "--format", "bencher", str(saved), "-o", str(tmp_path / "bmf.json"), cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    document = json.loads((tmp_path / "bmf.json").read_text(encoding="utf-8"))
    assert all("latency" in measures for measures in document.values())
