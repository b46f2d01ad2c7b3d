"""The gate's decisions on real files: outcomes, mismatches, missing benchmarks and per-metric results."""

from __future__ import annotations

import copy

import pytest
from test_compare_support import MACHINE_INFO, benchmark_entry, metric, noisy_rounds, write_run

from perfsuite.compare.config import GateConfig, ThresholdOverride
from perfsuite.compare.gate import Outcome, Status, run_gate
from perfsuite.compare.stats import Thresholds, Verdict

FAST = GateConfig(thresholds=Thresholds(resamples=500))
GENERATE = "benchmarks/test_generate.py::test_generate[torch-fp32-16]"
TOKENIZE = "benchmarks/test_tokenize.py::test_tokenize[torch-fp32-16]"


def entry(name="test_generate[torch-fp32-16]", median=0.01, seed=1, rounds=20, **extra):
    return benchmark_entry(name=name, data=noisy_rounds(median, rounds, seed=seed), **extra)


def gate(tmp_path, base_entries, head_entries, config=FAST, base_machine=None, head_machine=None):
    base = write_run(tmp_path / "base.json", base_entries, **(base_machine or {}))
    head = write_run(tmp_path / "head.json", head_entries, **(head_machine or {}))
    return run_gate(base, head, config)


def test_same_speed_passes(tmp_path):
    result = gate(tmp_path, [entry(seed=1)], [entry(seed=2)])
    assert result.outcome is Outcome.PASS
    assert result.outcome.exit_code == 0


def test_double_time_regression(tmp_path):
    result = gate(tmp_path, [entry(seed=1)], [entry(median=0.02, seed=2)])
    assert result.outcome is Outcome.REGRESSION
    assert result.outcome.exit_code == 1
    assert result.count(Verdict.SLOWER) == 1


def test_faster_passes(tmp_path):
    result = gate(tmp_path, [entry(median=0.02, seed=1)], [entry(seed=2)])
    assert result.outcome is Outcome.PASS
    assert result.count(Verdict.FASTER) == 1


def test_extra_metric_regression(tmp_path):
    base_metrics = {"tokens_per_second": metric(noisy_rounds(1000.0, 20, seed=3), "tokens/s", "higher")}
    head_metrics = {"tokens_per_second": metric(noisy_rounds(500.0, 20, seed=4), "tokens/s", "higher")}
    result = gate(tmp_path, [entry(seed=1, metrics=base_metrics)], [entry(seed=2, metrics=head_metrics)])
    verdicts = {item.metric: item.verdict for _, item in result.metric_results()}
    assert verdicts["time_s"] is Verdict.UNCHANGED
    assert verdicts["tokens_per_second"] is Verdict.SLOWER
    assert result.outcome is Outcome.REGRESSION


def test_single_value_metric_inconclusive(tmp_path):
    base_metrics = {"peak_rss_bytes": metric([1.0e8], "bytes")}
    head_metrics = {"peak_rss_bytes": metric([3.0e8], "bytes")}
    result = gate(tmp_path, [entry(seed=1, metrics=base_metrics)], [entry(seed=2, metrics=head_metrics)])
    verdicts = {item.metric: item.verdict for _, item in result.metric_results()}
    assert verdicts["peak_rss_bytes"] is Verdict.INCONCLUSIVE
    assert result.outcome is Outcome.PASS


def test_metric_missing_in_head_cannot_compare(tmp_path):
    base_metrics = {"decode_token_s": metric(noisy_rounds(0.001, 20, seed=3))}
    result = gate(tmp_path, [entry(seed=1, metrics=base_metrics)], [entry(seed=2)])
    statuses = {item.metric: item.status for _, item in result.metric_results()}
    assert statuses["decode_token_s"] is Status.MISSING_IN_HEAD
    assert result.outcome is Outcome.CANNOT_COMPARE


def test_metric_only_in_head_no_baseline(tmp_path):
    head_metrics = {"decode_token_s": metric(noisy_rounds(0.001, 20, seed=3))}
    result = gate(tmp_path, [entry(seed=1)], [entry(seed=2, metrics=head_metrics)])
    statuses = {item.metric: item.status for _, item in result.metric_results()}
    assert statuses["decode_token_s"] is Status.NO_BASELINE
    assert result.outcome is Outcome.PASS


def test_unreadable_metric_cannot_compare(tmp_path):
    head_metrics = {"decode_token_s": {"unit": "s", "direction": "sideways", "values": [1.0]}}
    result = gate(tmp_path, [entry(seed=1)], [entry(seed=2, metrics=head_metrics)])
    statuses = {item.metric: item.status for _, item in result.metric_results()}
    assert statuses["decode_token_s"] is Status.UNREADABLE
    assert result.outcome is Outcome.CANNOT_COMPARE


def test_missing_in_head_never_passes(tmp_path):
    result = gate(tmp_path, [entry(seed=1), entry("test_tokenize[torch-fp32-16]", seed=3)], [entry(seed=2)])
    statuses = {item.fullname: item.status for item in result.benchmarks}
    assert statuses[TOKENIZE] is Status.MISSING_IN_HEAD
    assert result.outcome is Outcome.CANNOT_COMPARE
    assert result.outcome.exit_code == 2


def test_no_baseline_listed(tmp_path):
    result = gate(tmp_path, [entry(seed=1)], [entry(seed=2), entry("test_tokenize[torch-fp32-16]", seed=3)])
    statuses = {item.fullname: item.status for item in result.benchmarks}
    assert statuses[TOKENIZE] is Status.NO_BASELINE
    assert result.outcome is Outcome.PASS


def test_only_new_benchmarks_cannot_compare(tmp_path):
    result = gate(tmp_path, [entry(seed=1)], [entry("test_tokenize[torch-fp32-16]", seed=3)])
    assert result.outcome is Outcome.CANNOT_COMPARE


def test_unreadable_entry_cannot_compare(tmp_path):
    broken = entry("test_tokenize[torch-fp32-16]", seed=3)
    del broken["stats"]["data"]
    result = gate(tmp_path, [entry(seed=1)], [entry(seed=2), broken])
    statuses = {item.fullname: item.status for item in result.benchmarks}
    assert statuses[TOKENIZE] is Status.UNREADABLE
    assert result.outcome is Outcome.CANNOT_COMPARE


def test_regression_wins_over_missing(tmp_path):
    base = [entry(seed=1), entry("test_tokenize[torch-fp32-16]", seed=3)]
    result = gate(tmp_path, base, [entry(median=0.02, seed=2)])
    assert result.outcome is Outcome.REGRESSION


def machine_with(**changes):
    """Return machine_info with ``changes`` applied. A key such as ``cpu__count`` sets machine_info["cpu"]["count"]."""
    machine = copy.deepcopy(MACHINE_INFO)
    for dotted, value in changes.items():
        target = machine
        *parents, leaf = dotted.split("__")
        for parent in parents:
            target = target[parent]
        target[leaf] = value
    return machine


@pytest.mark.parametrize(
    ("changes", "subject"),
    [
        ({"cpu__brand_raw": "Intel Xeon"}, "CPU"),
        ({"cpu__count": 4}, "CPU count"),
        ({"system": "Darwin"}, "operating system"),
        ({"machine": "aarch64"}, "architecture"),
        ({"python_version": "3.12.1"}, "Python version"),
        ({"perfsuite__versions": {**MACHINE_INFO["perfsuite"]["versions"], "torch": "2.14.0+cpu"}}, "torch version"),
    ],
)
def test_machine_mismatch_rejected(tmp_path, changes, subject):
    result = gate(tmp_path, [entry(seed=1)], [entry(seed=2)], head_machine=machine_with(**changes))
    assert result.outcome is Outcome.CANNOT_COMPARE
    assert [item.subject for item in result.mismatches] == [subject]
    assert result.benchmarks == ()


def test_machine_mismatch_names_values(tmp_path):
    result = gate(tmp_path, [entry(seed=1)], [entry(seed=2)], head_machine=machine_with(cpu__count=4))
    assert result.mismatches[0].base == "2"
    assert result.mismatches[0].head == "4"


def test_machine_mismatch_allowed(tmp_path):
    config = GateConfig(thresholds=Thresholds(resamples=500), allow_mismatch=True)
    result = gate(tmp_path, [entry(seed=1)], [entry(seed=2)], config, head_machine=machine_with(cpu__count=4))
    assert result.outcome is Outcome.PASS
    assert result.mismatch_allowed
    assert result.mismatches[0].subject == "CPU count"


def test_own_version_not_a_mismatch(tmp_path):
    versions = {**MACHINE_INFO["perfsuite"]["versions"], "perfsuite": "0.2.0"}
    result = gate(tmp_path, [entry(seed=1)], [entry(seed=2)], head_machine=machine_with(perfsuite__versions=versions))
    assert result.outcome is Outcome.PASS


@pytest.mark.parametrize(
    ("extra", "subject"),
    [
        ({"model": {"fingerprint": "0123456789abcdef"}}, "model fingerprint"),
        ({"threads": 1}, "threads"),
        ({"backend_settings": {"threads": 2, "torch_threads": 1, "dtype": "float32"}}, "backend setting torch_threads"),
    ],
)
def test_setup_mismatch_rejected(tmp_path, extra, subject):
    result = gate(tmp_path, [entry(seed=1)], [entry(seed=2, **extra)])
    assert result.outcome is Outcome.CANNOT_COMPARE
    assert result.benchmarks[0].status is Status.MISMATCH
    assert result.mismatches[0].subject == subject
    assert result.mismatches[0].benchmarks == (GENERATE,)


@pytest.mark.parametrize(
    ("extra", "subject"),
    [
        ({"model": {"fingerprint": "0123456789abcdef"}}, "model fingerprint"),
        ({"threads": 1}, "threads"),
    ],
)
def test_setup_mismatch_allowed(tmp_path, extra, subject):
    config = GateConfig(thresholds=Thresholds(resamples=500), allow_mismatch=True)
    result = gate(tmp_path, [entry(seed=1)], [entry(seed=2, **extra)], config)
    assert result.outcome is Outcome.PASS
    assert result.mismatches[0].subject == subject


def test_work_mismatch_never_allowed(tmp_path):
    config = GateConfig(thresholds=Thresholds(resamples=500), allow_mismatch=True)
    result = gate(tmp_path, [entry(seed=1)], [entry(seed=2, new_tokens=64)], config)
    assert result.outcome is Outcome.CANNOT_COMPARE
    assert result.mismatches[0].subject == "new tokens"
    assert not result.mismatches[0].allowed


def test_work_fingerprint_mismatch(tmp_path):
    config = GateConfig(thresholds=Thresholds(resamples=500), allow_mismatch=True)
    result = gate(tmp_path, [entry(seed=1, work_fingerprint="aaaa")], [entry(seed=2, work_fingerprint="bbbb")], config)
    assert result.outcome is Outcome.CANNOT_COMPARE
    assert result.mismatches[0].subject == "work fingerprint (input tokens)"


def test_work_fingerprint_absent_in_base(tmp_path):
    result = gate(tmp_path, [entry(seed=1)], [entry(seed=2, work_fingerprint="bbbb")])
    assert result.outcome is Outcome.PASS


def test_mismatches_grouped(tmp_path):
    names = ["test_generate[torch-fp32-16]", "test_tokenize[torch-fp32-16]"]
    other_model = {"model": {"fingerprint": "0123456789abcdef"}}
    result = gate(tmp_path, [entry(name, seed=1) for name in names], [entry(name, seed=2, **other_model) for name in names])
    assert len(result.mismatches) == 1
    assert result.mismatches[0].benchmarks == (GENERATE, TOKENIZE)


def test_override_min_effect_by_group(tmp_path):
    # A 30% slowdown is a regression at the default 5% but not under a 50% override.
    config = GateConfig(
        thresholds=Thresholds(resamples=500),
        overrides=(ThresholdOverride(match="generate: *", values={"min_effect": 0.5}),),
    )
    result = gate(tmp_path, [entry(seed=1)], [entry(median=0.013, seed=2)], config)
    assert result.outcome is Outcome.PASS
    assert result.metric_results()[0][1].thresholds.min_effect == 0.5


def test_override_by_metric(tmp_path):
    config = GateConfig(
        thresholds=Thresholds(resamples=500),
        overrides=(ThresholdOverride(metric="tokens_*", values={"alpha": 0.001}),),
    )
    base_metrics = {"tokens_per_second": metric(noisy_rounds(1000.0, 20, seed=3), "tokens/s", "higher")}
    result = gate(tmp_path, [entry(seed=1, metrics=base_metrics)], [entry(seed=2, metrics=base_metrics)], config)
    alphas = {item.metric: item.thresholds.alpha for _, item in result.metric_results()}
    assert alphas == {"time_s": 0.01, "tokens_per_second": 0.001}


def test_pooled_runs_compared(tmp_path):
    for index in range(3):
        write_run(tmp_path / "base" / f"{index}.json", [entry(seed=index)])
        write_run(tmp_path / "head" / f"{index}.json", [entry(median=0.02, seed=10 + index)])
    result = run_gate(tmp_path / "base", tmp_path / "head", FAST)
    comparison = result.metric_results()[0][1].comparison
    assert comparison.base_rounds == 60
    assert result.outcome is Outcome.REGRESSION
