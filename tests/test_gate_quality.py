"""Tests of scripts/gate_quality.py: trial forming, rates and intervals, and short real runs."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from scipy import stats as scipy_stats
from test_compare_support import benchmark_entry, noisy_rounds, write_run

from perfsuite.compare import GateConfig, Outcome, Thresholds
from perfsuite.slowdown import SLOWDOWN_VARIABLE

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
SCRIPT = REPOSITORY_ROOT / "scripts" / "gate_quality.py"
FAST = GateConfig(thresholds=Thresholds(resamples=500))


def _load_script():
    spec = importlib.util.spec_from_file_location("gate_quality", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gate_quality"] = module
    spec.loader.exec_module(module)
    return module


gate_quality = _load_script()


def paths(prefix, count):
    return [Path(f"{index:03d}-{prefix}.json") for index in range(count)]


def settings(tmp_path, **changes):
    values = {
        "model": "synthetic:tiny",
        "backend": "torch-fp32",
        "slowdown": 0.10,
        "runs_per_side": 3,
        "budget_s": 60.0,
        "run_timeout_s": 60.0,
        "selection": "generate",
        "extra_pytest_args": (),
        "runs_dir": tmp_path,
        "collect": True,
        "gate_config_path": REPOSITORY_ROOT / "pyproject.toml",
    }
    values.update(changes)
    return gate_quality.Settings(**values)


# Forming trials


def test_null_trials_slide_by_one():
    trials = gate_quality.null_trials(paths("A", 12), 3, gate_quality.TrialKind.CLEAN_CLEAN)
    assert len(trials) == 7


def test_null_trials_alternate_sides():
    runs = paths("A", 6)
    trial = gate_quality.null_trials(runs, 3, gate_quality.TrialKind.CLEAN_CLEAN)[0]
    assert trial.base == (runs[0], runs[2], runs[4])
    assert trial.head == (runs[1], runs[3], runs[5])


def test_null_trials_independent_are_disjoint():
    trials = gate_quality.null_trials(paths("A", 13), 3, gate_quality.TrialKind.CLEAN_CLEAN)
    independent = [trial for trial in trials if trial.independent]
    assert len(independent) == 2
    used = [path for trial in independent for path in trial.base + trial.head]
    assert len(used) == len(set(used))


def test_null_trials_too_few_runs():
    assert gate_quality.null_trials(paths("A", 5), 3, gate_quality.TrialKind.CLEAN_CLEAN) == []


def test_ab_trials_pair_runs():
    clean, slowed = paths("A", 5), paths("B", 4)
    trials = gate_quality.ab_trials(clean, slowed, 2)
    assert len(trials) == 3
    assert trials[1].base == (clean[1], clean[2])
    assert trials[1].head == (slowed[1], slowed[2])


def test_ab_trials_independent_count():
    trials = gate_quality.ab_trials(paths("A", 10), paths("B", 10), 3)
    assert sum(trial.independent for trial in trials) == 3


def test_form_trials_orders_by_pair(tmp_path):
    runs = [gate_quality.CollectedRun(label, pair, Path(f"{pair:03d}-{label}.json")) for pair in (1, 0) for label in "AB"]
    collection = gate_quality.Collection(tuple(runs), "command", None, None, None)
    trials = gate_quality.form_trials(collection, 1)
    kinds = [trial.kind.value for trial in trials]
    assert kinds == ["A/A", "B/B", "A/B", "A/B"]
    assert trials[0].base == (Path("000-A.json"),)


# Rates and intervals


def test_wilson_zero_of_ten():
    low, high = gate_quality.wilson_interval(0.0, 10)
    assert low == pytest.approx(0.0, abs=1e-12)
    assert high == pytest.approx(3.8415 / 13.8415, abs=1e-4)


@pytest.mark.parametrize("events,trials", [(0, 8), (3, 9), (5, 10), (26, 26)])
def test_wilson_matches_scipy(events, trials):
    expected = scipy_stats.binomtest(events, trials).proportion_ci(confidence_level=0.95, method="wilson")
    low, high = gate_quality.wilson_interval(events / trials, trials)
    assert low == pytest.approx(expected.low, abs=1e-9)
    assert high == pytest.approx(expected.high, abs=1e-9)


def test_wilson_rejects_proportion_above_one():
    with pytest.raises(ValueError, match="proportion"):
        gate_quality.wilson_interval(1.5, 10)


def test_trials_to_show_false_alarms():
    # The upper bound of 0 of n is z^2 / (n + z^2), at most 0.01 from n = 99 z^2 = 380.3.
    assert gate_quality.trials_to_show(0.01, at_most=True) == 381


def test_trials_to_show_detection():
    # The lower bound of n of n is n / (n + z^2), at least 0.95 from n = 19 z^2 = 72.99.
    assert gate_quality.trials_to_show(0.95, at_most=False) == 73


def test_rate_interval_uses_independent_trials():
    rate = gate_quality.Rate(events=2, trials=20, independent_trials=5)
    assert rate.estimate == pytest.approx(0.1)
    assert rate.interval() == gate_quality.wilson_interval(0.1, 5)


def test_rate_without_trials():
    rate = gate_quality.Rate(events=0, trials=0, independent_trials=0)
    assert rate.estimate is None
    assert rate.interval() is None


# Gating constructed trials


def write_pair(tmp_path, pair, *, head_factor, name="test_generate[torch-fp32-16]", phase="generate"):
    """Write the A and B run of one pair; B's rounds are ``head_factor`` times A's."""
    clean = noisy_rounds(0.01, 20, seed=2 * pair)
    slowed = [head_factor * value for value in noisy_rounds(0.01, 20, seed=2 * pair + 1)]
    return (
        write_run(tmp_path / f"{pair:03d}-A.json", [benchmark_entry(name, clean, phase=phase)]),
        write_run(tmp_path / f"{pair:03d}-B.json", [benchmark_entry(name, slowed, phase=phase)]),
    )


def gate(tmp_path, kind, base, head):
    trial = gate_quality.Trial(kind, (base,), (head,), independent=True)
    return gate_quality.gate_trial(trial, FAST, "torch-fp32", {})


def test_gate_trial_detects_slowdown(tmp_path):
    clean, slowed = write_pair(tmp_path, 0, head_factor=1.2)
    result = gate(tmp_path, gate_quality.TrialKind.CLEAN_SLOWED, clean, slowed)
    assert result.outcome is Outcome.REGRESSION
    assert result.slower_expected == ("test_generate[torch-fp32-16]: time_s",)
    assert result.is_event


def test_gate_trial_same_code_passes(tmp_path):
    clean, other = write_pair(tmp_path, 0, head_factor=1.0)
    result = gate(tmp_path, gate_quality.TrialKind.CLEAN_CLEAN, clean, other)
    assert result.outcome is Outcome.PASS
    assert not result.is_event


def test_gate_trial_tokenize_not_detection(tmp_path):
    clean, slowed = write_pair(tmp_path, 0, head_factor=1.2, name="test_tokenize[torch-fp32-16]", phase="tokenize")
    result = gate(tmp_path, gate_quality.TrialKind.CLEAN_SLOWED, clean, slowed)
    assert result.outcome is Outcome.REGRESSION
    assert result.slower_expected == ()
    assert not result.is_event


def test_gate_trial_other_backend_not_detection(tmp_path):
    clean, slowed = write_pair(tmp_path, 0, head_factor=1.2, name="test_generate[onnxruntime-16]")
    result = gate(tmp_path, gate_quality.TrialKind.CLEAN_SLOWED, clean, slowed)
    assert result.outcome is Outcome.REGRESSION
    assert not result.is_event


def test_null_regression_is_false_alarm():
    trial = gate_quality.Trial(gate_quality.TrialKind.SLOWED_SLOWED, (), (), independent=False)
    result = gate_quality.TrialResult(trial, Outcome.REGRESSION, ("x: time_s",), ())
    assert result.is_event


# Collecting runs


def test_run_environment_clean_drops_slowdown(tmp_path, monkeypatch):
    monkeypatch.setenv(SLOWDOWN_VARIABLE, "torch-fp32:0.5")
    environment = gate_quality.run_environment(settings(tmp_path), "A")
    assert SLOWDOWN_VARIABLE not in environment
    assert environment["HF_HUB_OFFLINE"] == "1"


def test_run_environment_slowed_sets_slowdown(tmp_path):
    environment = gate_quality.run_environment(settings(tmp_path, slowdown=0.25), "B")
    assert environment[SLOWDOWN_VARIABLE] == "torch-fp32:0.25"


def test_benchmark_command_options(tmp_path):
    command = gate_quality.benchmark_command(settings(tmp_path), tmp_path / "out.json")
    assert command[command.index("--perf-model") + 1] == "synthetic:tiny"
    assert command[command.index("-k") + 1] == "generate"
    assert command[-1] == f"--benchmark-json={tmp_path / 'out.json'}"


def test_collect_runs_alternates_until_deadline(tmp_path):
    clock = [0.0]

    def fake_run(run_settings, label, pair):
        clock[0] += 10.0
        return gate_quality.CollectedRun(label, pair, tmp_path / f"{pair:03d}-{label}.json", wall_s=10.0)

    runs = gate_quality.collect_runs(settings(tmp_path), deadline=45.0, run=fake_run, clock=lambda: clock[0])
    assert [run.label for run in runs] == ["A", "B", "B", "A"]
    assert [run.pair for run in runs] == [0, 0, 1, 1]


# The whole script


def write_pairs(runs_dir, count, head_factor):
    for pair in range(count):
        write_pair(runs_dir, pair, head_factor=head_factor)


def test_main_reports_saved_runs(tmp_path):
    runs_dir = tmp_path / "runs"
    write_pairs(runs_dir, 4, head_factor=1.2)
    output = tmp_path / "report.md"
    code = gate_quality.main(["--runs-dir", str(runs_dir), "--no-collect", "--runs-per-side", "1", "--output", str(output)])
    report = output.read_text(encoding="utf-8")
    assert code == 0
    assert "| **false alarms** | A/A and B/B | 0 / 6 | 4 | 0.0% |" in report
    assert "| **detection** | A/B | 4 / 4 | 4 | 100.0% |" in report


def test_report_names_single_commit(tmp_path):
    runs_dir = tmp_path / "runs"
    write_pairs(runs_dir, 2, head_factor=1.2)
    output = tmp_path / "report.md"
    gate_quality.main(["--runs-dir", str(runs_dir), "--no-collect", "--runs-per-side", "1", "--output", str(output)])
    assert "| code under test | commit 000000000000 in every run |" in output.read_text(encoding="utf-8")


def test_report_flags_changed_commit(tmp_path):
    runs_dir = tmp_path / "runs"
    write_pairs(runs_dir, 2, head_factor=1.2)
    changed = runs_dir / "001-B.json"
    document = json.loads(changed.read_text(encoding="utf-8"))
    document["commit_info"] = {"id": "1" * 40, "dirty": True}
    changed.write_text(json.dumps(document), encoding="utf-8")
    output = tmp_path / "report.md"
    gate_quality.main(["--runs-dir", str(runs_dir), "--no-collect", "--runs-per-side", "1", "--output", str(output)])
    report = output.read_text(encoding="utf-8")
    assert "**2 commits**" in report
    assert "111111111111 (dirty) in 1 run(s) (001-B to 001-B)" in report


def test_main_empty_runs_dir_fails(tmp_path):
    code = gate_quality.main(["--runs-dir", str(tmp_path), "--no-collect"])
    assert code == 1


def test_main_failed_run_exits_nonzero(tmp_path):
    arguments = ["--model", "synthetic:no-such-model", "--runs-dir", str(tmp_path), "--budget-s", "60"]
    code = gate_quality.main(arguments)
    assert code == 1


def test_smoke_run_tiny(tmp_path):
    """A real measurement on the tiny model with a 30 s budget: about 30 s on 2 cores."""
    output = tmp_path / "report.md"
    command = [
        sys.executable, str(SCRIPT), "--model", "synthetic:tiny", "--runs-per-side", "1", "--budget-s", "30",
        "--runs-dir", str(tmp_path / "runs"), "--output", str(output),
    ]
    completed = subprocess.run(command, cwd=REPOSITORY_ROOT, capture_output=True, text=True, timeout=180)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "## Rates" in output.read_text(encoding="utf-8")
    assert list((tmp_path / "runs").glob("000-A.json"))
