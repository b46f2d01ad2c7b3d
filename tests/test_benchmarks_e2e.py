"""End-to-end runs of the real benchmark modules in a pytest subprocess, as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARK_DIR = Path(__file__).resolve().parent.parent / "benchmarks"
BACKEND_IDS = ("torch-fp32", "torch-int8-dynamic", "onnxruntime", "onnxruntime-int8")
QUICK_PHASE_COUNT = 3  # tokenize, first token and generate, each once in the quick profile

def run_suite(suite: pytest.Pytester, *args: str) -> pytest.RunResult:
    return suite.runpytest_subprocess("-p", "no:cacheprovider", "--perf-quick", *args, timeout=900)


def saved_runs(storage: Path) -> list[Path]:
    return sorted(storage.rglob("*.json"))


@pytest.fixture(scope="module")
def default_run(tmp_path_factory, export_cache_dir) -> tuple[subprocess.CompletedProcess, dict]:
    """One quick run of every backend on the default model spec, saved as JSON."""
    folder = tmp_path_factory.mktemp("default-run")
    (folder / "conftest.py").write_text('pytest_plugins = ("perfsuite.pytest_plugin",)\n')
    for module in BENCHMARK_DIR.glob("test_*.py"):
        (folder / module.name).write_text(module.read_text())

    env = {
        **_clean_environment(),
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_CACHE": str(folder / "empty-hub-cache"),
        "PERFSUITE_CACHE_DIR": str(export_cache_dir),
    }
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--perf-quick",
         "--benchmark-storage", str(folder / "storage"), "--benchmark-save", "quick", str(folder)],
        cwd=folder, env=env, capture_output=True, text=True, timeout=900,
    )
    runs = saved_runs(folder / "storage")
    saved = json.loads(runs[0].read_text()) if runs else {}
    return completed, saved


def _clean_environment() -> dict[str, str]:
    import os

    return {key: value for key, value in os.environ.items() if not key.startswith(("PERFSUITE_", "PYTEST_"))}


def test_default_run_passes(default_run):
    completed, _ = default_run

    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]


def test_default_run_header_says_synthetic(default_run):
    completed, _ = default_run

    assert "perfsuite model: synthetic:distilgpt2" in completed.stdout
    assert "SYNTHETIC weights" in completed.stdout
    assert "fell back because" in completed.stdout


def test_saved_json_has_every_benchmark(default_run):
    _, saved = default_run

    backends = sorted(bench["extra_info"]["backend"] for bench in saved["benchmarks"])

    assert len(saved["benchmarks"]) == QUICK_PHASE_COUNT * len(BACKEND_IDS)
    assert backends == sorted(BACKEND_IDS * QUICK_PHASE_COUNT)


def test_saved_groups_pair_backends(default_run):
    _, saved = default_run
    groups: dict[str, set[str]] = {}

    for bench in saved["benchmarks"]:
        groups.setdefault(bench["group"], set()).add(bench["extra_info"]["backend"])

    assert len(groups) == QUICK_PHASE_COUNT
    for members in groups.values():
        assert members == set(BACKEND_IDS)


def test_saved_extra_info_complete(default_run):
    _, saved = default_run

    for bench in saved["benchmarks"]:
        info = bench["extra_info"]
        assert info["prompt_tokens"] == 16, bench["name"]
        assert info["tokens_per_second"] > 0, bench["name"]
        assert info["model"]["synthetic"] is True, bench["name"]
        assert info["model"]["requested"] == "distilgpt2", bench["name"]
        assert len(info["model"]["fingerprint"]) == 16, bench["name"]
        assert info["threads"] >= 1, bench["name"]
        assert info["environment"]["versions"]["torch"] != "not installed", bench["name"]
        assert info["environment"]["cpu_model"], bench["name"]
        assert info["warmup_rounds"] == 1, bench["name"]


def test_saved_generate_counts_new_tokens(default_run):
    _, saved = default_run
    generate = [bench for bench in saved["benchmarks"] if bench["extra_info"]["phase"] == "generate"]

    for bench in generate:
        expected = bench["extra_info"]["new_tokens"] / bench["stats"]["median"]
        assert bench["extra_info"]["new_tokens"] == 8
        assert bench["extra_info"]["tokens_per_second"] == pytest.approx(expected, rel=1e-3)


def test_saved_generate_phase_metrics(default_run):
    _, saved = default_run
    generate = [bench for bench in saved["benchmarks"] if bench["extra_info"]["phase"] == "generate"]

    for bench in generate:
        metrics = bench["extra_info"]["metrics"]
        rounds = bench["stats"]["rounds"]
        assert len(metrics["time_to_first_token_s"]["values"]) == rounds, bench["name"]
        assert len(metrics["decode_token_s"]["values"]) == rounds, bench["name"]
        assert metrics["decode_tokens_per_second"]["direction"] == "higher", bench["name"]
        percentiles = bench["extra_info"]["decode_token_percentiles_s"]
        assert percentiles["p50"] <= percentiles["p90"] <= percentiles["p99"], bench["name"]
        assert bench["extra_info"]["decode_bound"]["weight_bytes"] > 0, bench["name"]


def test_summary_lists_backends(default_run):
    completed, _ = default_run
    summary = completed.stdout.split("perfsuite summary", 1)[-1]

    for backend_id in BACKEND_IDS:
        assert f"\n{backend_id} " in summary
    assert "Harness overhead" in summary


def test_saved_onnx_export_recorded(default_run):
    _, saved = default_run
    onnx = [bench for bench in saved["benchmarks"] if bench["extra_info"]["backend"] == "onnxruntime"]

    export = onnx[0]["extra_info"]["backend_settings"]["export"]

    assert export["exporter"]
    assert isinstance(export["fusions"], list)


def test_saved_machine_info_stamped(default_run):
    _, saved = default_run

    stamp = saved["machine_info"]["perfsuite"]

    assert stamp["model"] == "distilgpt2"
    assert stamp["backends"] == list(BACKEND_IDS)
    assert stamp["profile"] == "quick"
    assert stamp["environment"]["physical_cores"] >= 1
    assert "commit" not in stamp["environment"]


def test_compare_and_histogram(suite, tmp_path):
    storage = suite.path / "storage"
    common = ("--perf-model=synthetic:tiny", "--perf-backends=torch-fp32", f"--benchmark-storage={storage}")

    first = run_suite(suite, *common, "--benchmark-autosave")
    second = run_suite(suite, *common, "--benchmark-compare", f"--benchmark-histogram={tmp_path / 'hist'}")

    assert first.ret == 0
    assert second.ret == 0
    assert "0001" in second.stdout.str()
    histograms = sorted(tmp_path.glob("hist*.svg"))
    assert len(histograms) == QUICK_PHASE_COUNT
    assert histograms[0].read_text().lstrip().startswith("<?xml")


def test_compare_fail_detects_slowdown(suite, tmp_path):
    storage = suite.path / "storage"
    common = ("--perf-model=synthetic:tiny", "--perf-backends=torch-fp32", f"--benchmark-storage={storage}")
    run_suite(suite, *common, "--benchmark-save=base")
    baseline = saved_runs(storage)[0]
    saved = json.loads(baseline.read_text())
    for bench in saved["benchmarks"]:
        for key in ("min", "max", "mean", "median"):
            bench["stats"][key] /= 100
    baseline.write_text(json.dumps(saved))

    result = run_suite(suite, *common, "--benchmark-compare=0001", "--benchmark-compare-fail=median:10%")

    assert result.ret != 0
    assert "Performance has regressed" in result.stdout.str() + result.stderr.str()


def test_compare_command_reads_saved(suite, tmp_path):
    storage = suite.path / "storage"
    run_suite(suite, "--perf-model=synthetic:tiny", "--perf-backends=torch-fp32",
              f"--benchmark-storage={storage}", "--benchmark-save=one")
    saved = saved_runs(storage)[0]

    completed = subprocess.run(
        [sys.executable, "-m", "pytest_benchmark", "compare", str(saved)],
        capture_output=True, text=True, timeout=120,
    )

    assert completed.returncode == 0, completed.stderr
    assert "test_generate[torch-fp32-t" in completed.stdout + completed.stderr


def test_unknown_backend_usage_error(suite):
    result = run_suite(suite, "--perf-backends=torch-fp32,tensorrt")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    message = result.stderr.str()
    assert "'tensorrt'" in message
    for backend_id in BACKEND_IDS:
        assert backend_id in message


def test_invalid_threads_usage_error(suite):
    result = run_suite(suite, "--perf-threads=many")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "'many'" in result.stderr.str()


def test_missing_model_dir_named(suite, tmp_path):
    missing = tmp_path / "no-such-model"

    result = run_suite(suite, f"--perf-model={missing}")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert str(missing) in result.stdout.str() + result.stderr.str()


def test_export_failure_spares_other_backends(suite, tmp_path):
    not_a_folder = tmp_path / "cache-file"
    not_a_folder.write_text("a file where the export cache folder should be")

    result = run_suite(
        suite, "--perf-model=synthetic:tiny", "--perf-backends=torch-fp32,onnxruntime",
        f"--perf-cache-dir={not_a_folder}", "--benchmark-disable",
    )

    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == QUICK_PHASE_COUNT
    assert outcomes.get("errors") == QUICK_PHASE_COUNT
    assert "backend onnxruntime could not be built" in result.stdout.str()
    assert str(not_a_folder) in result.stdout.str()


def test_rounds_option_sets_rounds(suite, tmp_path):
    result = run_suite(
        suite, "--perf-model=synthetic:tiny", "--perf-backends=torch-fp32", "--perf-no-extras", "--perf-rounds=6",
        f"--benchmark-json={tmp_path / 'run.json'}",
    )
    saved = json.loads((tmp_path / "run.json").read_text())
    rounds = {bench["extra_info"]["phase"]: bench["stats"]["rounds"] for bench in saved["benchmarks"]}

    assert result.ret == 0
    assert rounds["generate"] == 6
    assert rounds["first-token"] == 6
    assert rounds["tokenize"] == 20


def test_rounds_option_rejects_list(suite):
    result = run_suite(suite, "--perf-rounds=3,5")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "'3,5'" in result.stderr.str()
