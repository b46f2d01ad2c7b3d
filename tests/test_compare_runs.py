"""Loading saved runs: validation of files, metrics, pooling of several files per side."""

from __future__ import annotations

import json

import pytest
from test_compare_support import benchmark_entry, metric, noisy_rounds, run_document, write_document, write_run

from perfsuite.compare.errors import RunFileError
from perfsuite.compare.runs import TIME_METRIC, load_run, parse_run_document
from perfsuite.compare.stats import Direction


def test_load_single_file(tmp_path):
    path = write_run(tmp_path / "run.json", [benchmark_entry(data=[0.1, 0.2, 0.3])])
    run = load_run(path)
    record = run.benchmarks["benchmarks/test_generate.py::test_generate[torch-fp32-16]"]
    assert record.metrics[TIME_METRIC].values == (0.1, 0.2, 0.3)
    assert record.metrics[TIME_METRIC].direction is Direction.LOWER
    assert record.setup.backend == "torch-fp32"
    assert record.setup.model_fingerprint == "e69b25ce4685ca87"
    assert run.sources == (str(path),)


def test_load_machine_identity(tmp_path):
    run = load_run(write_run(tmp_path / "run.json", [benchmark_entry()]))
    assert run.machine.cpu_brand == "AMD EPYC"
    assert run.machine.cpu_count == 2
    assert run.machine.python_version == "3.11.7"
    assert run.machine.library_versions["torch"] == "2.13.0+cpu"


def test_load_ignores_own_version(tmp_path):
    run = load_run(write_run(tmp_path / "run.json", [benchmark_entry()]))
    assert "perfsuite" not in run.machine.library_versions


def test_load_extra_metrics(tmp_path):
    metrics = {
        "time_to_first_token_s": metric([0.01, 0.02, 0.03]),
        "tokens_per_second": metric([100.0, 110.0, 120.0], unit="tokens/s", direction="higher"),
        "peak_rss_bytes": {"unit": "bytes", "direction": "lower", "values": 123456789},
    }
    run = load_run(write_run(tmp_path / "run.json", [benchmark_entry(metrics=metrics)]))
    record = next(iter(run.benchmarks.values()))
    assert list(record.metrics) == [TIME_METRIC, "time_to_first_token_s", "tokens_per_second", "peak_rss_bytes"]
    assert record.metrics["tokens_per_second"].direction is Direction.HIGHER
    assert record.metrics["peak_rss_bytes"].values == (123456789.0,)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"unit": "s", "direction": "down", "values": [1.0]}, "direction must be 'lower' or 'higher'"),
        ({"unit": 3, "direction": "lower", "values": [1.0]}, "unit must be a string"),
        ({"unit": "s", "direction": "lower", "values": [1.0, None]}, "every value must be a finite number"),
        ({"unit": "s", "direction": "lower", "values": "fast"}, "must be a list of numbers"),
        ([1.0, 2.0], "expected an object"),
    ],
)
def test_invalid_metric_recorded(tmp_path, spec, message):
    run = load_run(write_run(tmp_path / "run.json", [benchmark_entry(metrics={"bad": spec})]))
    record = next(iter(run.benchmarks.values()))
    assert "bad" not in record.metrics
    assert message in record.metric_problems["bad"]


def test_metric_named_time_s_rejected(tmp_path):
    run = load_run(write_run(tmp_path / "run.json", [benchmark_entry(metrics={TIME_METRIC: metric([1.0])})]))
    record = next(iter(run.benchmarks.values()))
    assert "taken from stats.data" in record.metric_problems[TIME_METRIC]


def test_missing_file(tmp_path):
    with pytest.raises(RunFileError, match="file not found"):
        load_run(tmp_path / "absent.json")


def test_not_json(tmp_path):
    path = tmp_path / "run.json"
    path.write_text("Name (time in us) Min Max\n", encoding="utf-8")
    with pytest.raises(RunFileError, match="not valid JSON") as caught:
        load_run(path)
    assert str(path) in str(caught.value)


def test_not_pytest_benchmark(tmp_path):
    path = write_document(tmp_path / "run.json", {"results": []})
    with pytest.raises(RunFileError, match="not a pytest-benchmark file"):
        load_run(path)


def test_no_machine_info(tmp_path):
    path = write_document(tmp_path / "run.json", {"benchmarks": [benchmark_entry()]})
    with pytest.raises(RunFileError, match="machine_info"):
        load_run(path)


def test_empty_benchmarks(tmp_path):
    with pytest.raises(RunFileError, match="contains no benchmark"):
        load_run(write_run(tmp_path / "run.json", []))


def test_saved_without_data(tmp_path):
    entry = benchmark_entry()
    del entry["stats"]["data"]
    path = write_run(tmp_path / "run.json", [entry])
    with pytest.raises(RunFileError, match="--benchmark-save-data") as caught:
        load_run(path)
    assert str(path) in str(caught.value)


def test_not_perfsuite_run(tmp_path):
    entry = benchmark_entry()
    del entry["extra_info"]["backend"]
    with pytest.raises(RunFileError, match="not a perfsuite run"):
        load_run(write_run(tmp_path / "run.json", [entry]))


def test_one_entry_without_data_unreadable(tmp_path):
    broken = benchmark_entry(name="test_tokenize[torch-fp32-16]")
    del broken["stats"]["data"]
    run = load_run(write_run(tmp_path / "run.json", [benchmark_entry(), broken]))
    assert len(run.benchmarks) == 1
    assert run.unreadable[0].fullname == "benchmarks/test_tokenize.py::test_tokenize[torch-fp32-16]"
    assert "--benchmark-save-data" in run.unreadable[0].reason


def test_one_entry_without_backend_unreadable(tmp_path):
    foreign = benchmark_entry(name="test_other[x-1]")
    del foreign["extra_info"]["backend"]
    run = load_run(write_run(tmp_path / "run.json", [benchmark_entry(), foreign]))
    assert "not measured by perfsuite" in run.unreadable[0].reason


def test_nan_in_data_unreadable(tmp_path):
    broken = benchmark_entry(name="test_tokenize[torch-fp32-16]", data=[0.1, float("nan"), 0.1])
    run = load_run(write_run(tmp_path / "run.json", [benchmark_entry(), broken]))
    assert "finite number" in run.unreadable[0].reason


def test_folder_pools_rounds(tmp_path):
    write_run(tmp_path / "side" / "a.json", [benchmark_entry(data=[1.0, 2.0])])
    write_run(tmp_path / "side" / "b.json", [benchmark_entry(data=[3.0, 4.0, 5.0])])
    run = load_run(tmp_path / "side")
    time_metric = next(iter(run.benchmarks.values())).metrics[TIME_METRIC]
    assert time_metric.values == (1.0, 2.0, 3.0, 4.0, 5.0)
    assert time_metric.run_sizes == (2, 3)
    assert len(run.sources) == 2


def test_several_paths_pool(tmp_path):
    first = write_run(tmp_path / "a.json", [benchmark_entry(data=[1.0])])
    second = write_run(tmp_path / "b.json", [benchmark_entry(data=[2.0])])
    run = load_run([first, second])
    assert next(iter(run.benchmarks.values())).metrics[TIME_METRIC].values == (1.0, 2.0)


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunFileError, match="contains no .json file"):
        load_run(tmp_path / "empty")


def test_pool_different_machines(tmp_path):
    write_run(tmp_path / "side" / "a.json", [benchmark_entry()])
    write_run(tmp_path / "side" / "b.json", [benchmark_entry()], system="Darwin")
    with pytest.raises(RunFileError, match="operating system: Linux vs Darwin"):
        load_run(tmp_path / "side")


def test_pool_different_setup(tmp_path):
    write_run(tmp_path / "side" / "a.json", [benchmark_entry()])
    write_run(tmp_path / "side" / "b.json", [benchmark_entry(new_tokens=64)])
    with pytest.raises(RunFileError, match="set up differently"):
        load_run(tmp_path / "side")


def test_pool_metric_unit_conflict(tmp_path):
    write_run(tmp_path / "side" / "a.json", [benchmark_entry(metrics={"m": metric([1.0], unit="s")})])
    write_run(tmp_path / "side" / "b.json", [benchmark_entry(metrics={"m": metric([1.0], unit="ms")})])
    with pytest.raises(RunFileError, match="metric m"):
        load_run(tmp_path / "side")


def test_parse_in_memory_document():
    document = json.loads(json.dumps(run_document([benchmark_entry(data=noisy_rounds(0.1, 5, seed=1))])))
    run = parse_run_document(document, source="this run")
    assert run.sources == ("this run",)
    assert len(next(iter(run.benchmarks.values())).metrics[TIME_METRIC].values) == 5


def test_versions_fall_back_to_extra_info():
    document = run_document([benchmark_entry()])
    del document["machine_info"]["perfsuite"]
    run = parse_run_document(document, source="old run")
    assert run.machine.library_versions["onnxruntime"] == "1.32.0"


def nested_environment_document(**environment_changes):
    """Return a run in the layout that keeps versions inside machine_info.perfsuite.environment."""
    document = run_document([benchmark_entry()])
    stamp = document["machine_info"]["perfsuite"]
    environment = {
        "cpu_model": "AMD EPYC",
        "physical_cores": 2,
        "kernel_flags": ["avx2", "fma"],
        "quantized_engine": "x86",
        "versions": stamp.pop("versions"),
        "commit": "abc123",
    }
    environment.update(environment_changes)
    stamp["environment"] = environment
    return document


def test_versions_read_from_environment():
    run = parse_run_document(nested_environment_document(), source="new layout")
    assert run.machine.library_versions["torch"] == "2.13.0+cpu"
    assert run.machine.environment == {"physical_cores": "2", "kernel_flags": "avx2, fma", "quantized_engine": "x86"}


def test_environment_commit_ignored():
    first = parse_run_document(nested_environment_document(commit="abc"), source="a")
    second = parse_run_document(nested_environment_document(commit="def"), source="b")
    assert first.machine.differences(second.machine) == []


def test_environment_engine_differs():
    first = parse_run_document(nested_environment_document(), source="a")
    second = parse_run_document(nested_environment_document(quantized_engine="onednn"), source="b")
    assert first.machine.differences(second.machine) == [("quantized engine", "x86", "onednn")]
