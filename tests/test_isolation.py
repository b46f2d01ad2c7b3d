"""Tests of isolated measurement: one fresh process per backend, checked against in-process figures.

The latency comparisons run torch with one intra-op thread. With as many threads as cores,
any other busy process stalls torch's thread barrier. On a 2-core machine running another
benchmark, a tiny model's decode step went from 1.1 ms to 32 ms in either process. Such a
comparison would test the neighbour rather than the isolation. One thread shares the CPU fairly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import torch

from perfsuite.backends.base import BackendSettings
from perfsuite.backends.onnxruntime_backend import OnnxRuntimeBackend
from perfsuite.backends.onnxruntime_int8 import OnnxRuntimeInt8Backend
from perfsuite.backends.torch_fp32 import TorchBackend
from perfsuite.backends.torch_int8_dynamic import TorchInt8DynamicBackend
from perfsuite.errors import InvalidOptionError
from perfsuite.isolation import (
    IsolatedResult,
    IsolationError,
    measure_isolated,
    measure_latency,
    model_size_bytes,
    onnx_graph_size_bytes,
    peak_rss_bytes,
)
from perfsuite.prompts import make_prompt

THREADS = 1
TIMEOUT_S = 300.0
PROMPT_TOKENS = 32
# Interleaved (isolated, in-process) pairs per comparison; each side keeps its fastest p50.
PAIRS = 3
# Bounds of the isolated p50 over the in-process p50. Measured on 2 cores while other benchmark
# runs shared the machine (load average 2 to 5): single pairs ranged 0.56..1.60 (tiny) and
# 0.65..1.51 (distilgpt2), the fastest-of-3 ratios 0.93..1.22 and 0.99..1.00. The band catches a
# distortion beyond 1.5x, not a smaller one.
MIN_RATIO = 0.67
MAX_RATIO = 1.5
DISTILGPT2_FP32_WEIGHT_BYTES = 81_912_576 * 4
TINY_NEW_TOKENS = 32
# Held by this process during the tiny runs. A tiny-model child peaks near 470 MiB.
BALLAST_BYTES = 1536 * 2**20


@dataclass(frozen=True)
class Comparison:
    """Interleaved isolated and in-process measurements of the same work."""

    isolated: tuple[IsolatedResult, ...]
    in_process_p50_s: tuple[float, ...]

    @property
    def fastest_p50_ratio(self) -> float:
        """Fastest isolated decode p50 over the fastest in-process p50."""
        return min(result.decode_token_p50_s for result in self.isolated) / min(self.in_process_p50_s)


def _compare(backend, spec: str, cache_dir, new_tokens: int, rounds: int) -> Comparison:
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    input_ids = make_prompt(backend.loaded.tokenizer, PROMPT_TOKENS).as_batch()

    isolated, in_process = [], []
    try:
        for _ in range(PAIRS):
            isolated.append(
                measure_isolated(backend.backend_id, spec, THREADS, cache_dir, PROMPT_TOKENS, new_tokens, TIMEOUT_S, rounds)
            )
            in_process.append(measure_latency(backend, input_ids, new_tokens, rounds).decode_token_p50_s)
    finally:
        torch.set_num_threads(previous_threads)

    return Comparison(tuple(isolated), tuple(in_process))


@pytest.fixture(scope="module")
def settings(export_cache_dir):
    return BackendSettings(threads=THREADS, cache_dir=export_cache_dir)


@pytest.fixture(scope="module")
def tiny_comparison(tiny_model, settings):
    """Tiny-model pairs, measured while this process keeps BALLAST_BYTES resident that the children must not report."""
    ballast = bytearray(b"\x01") * BALLAST_BYTES
    comparison = _compare(TorchBackend(tiny_model, settings), "synthetic:tiny", settings.cache_dir, TINY_NEW_TOKENS, 3)
    del ballast
    return comparison


@pytest.fixture(scope="module")
def tiny_result(tiny_comparison):
    return tiny_comparison.isolated[0]


@pytest.fixture(scope="module")
def distilgpt2_comparison(distilgpt2_model, settings):
    return _compare(TorchBackend(distilgpt2_model, settings), "synthetic:distilgpt2", settings.cache_dir, 8, 2)


@pytest.fixture(scope="module")
def distilgpt2_result(distilgpt2_comparison):
    return distilgpt2_comparison.isolated[0]


@pytest.fixture(scope="module")
def missing_model_error(export_cache_dir, tmp_path_factory):
    missing = tmp_path_factory.mktemp("empty") / "no-model-here"
    with pytest.raises(IsolationError) as raised:
        measure_isolated("torch-fp32", str(missing), THREADS, export_cache_dir, PROMPT_TOKENS, 4, TIMEOUT_S)
    return missing, str(raised.value)


def test_tiny_decode_matches_in_process(tiny_comparison):
    ratio = tiny_comparison.fastest_p50_ratio

    assert MIN_RATIO <= ratio <= MAX_RATIO, f"isolated / in-process decode p50 = {ratio:.3f}"


def test_distilgpt2_decode_matches_in_process(distilgpt2_comparison):
    ratio = distilgpt2_comparison.fastest_p50_ratio

    assert MIN_RATIO <= ratio <= MAX_RATIO, f"isolated / in-process decode p50 = {ratio:.3f}"


def test_generates_same_tokens(tiny_result, tiny_model, settings):
    backend = TorchBackend(tiny_model, settings)
    input_ids = make_prompt(tiny_model.tokenizer, PROMPT_TOKENS).as_batch()

    expected = backend.generate(input_ids, TINY_NEW_TOKENS)[0].tolist()

    assert list(tiny_result.generated_ids) == expected


def test_decode_steps_counted(tiny_result):
    assert tiny_result.decode_steps == tiny_result.rounds * (tiny_result.new_tokens - 1)


def test_decode_p90_not_below_p50(tiny_result):
    assert tiny_result.decode_token_p90_s >= tiny_result.decode_token_p50_s


def test_model_load_timed(tiny_result):
    assert tiny_result.model_load_s > 0


def test_backend_build_timed(tiny_result):
    assert tiny_result.backend_build_s > 0


def test_torch_has_no_export(tiny_result):
    assert (tiny_result.export_s, tiny_result.export_from_cache) == (None, None)


def test_size_matches_in_process(tiny_result, tiny_model, settings):
    assert tiny_result.size_on_disk_bytes == model_size_bytes(TorchBackend(tiny_model, settings))


def test_growth_is_peak_minus_baseline(tiny_result):
    assert tiny_result.peak_rss_growth_bytes == tiny_result.peak_rss_bytes - tiny_result.rss_before_load_bytes


def test_peak_not_below_end(tiny_result):
    assert tiny_result.peak_rss_bytes >= tiny_result.rss_at_end_bytes


def test_record_round_trips(tiny_result):
    record = json.loads(json.dumps(tiny_result.to_record()))

    assert IsolatedResult.from_record(record) == tiny_result


def test_peak_ignores_parent_memory(tiny_result):
    # ru_maxrss survives exec, so it would report at least the ballast this process held; VmHWM does not.
    assert tiny_result.peak_rss_bytes < BALLAST_BYTES, f"child peak {tiny_result.peak_rss_bytes} bytes"


def test_peak_source_is_vmhwm():
    assert peak_rss_bytes()[1] == "VmHWM"


def test_distilgpt2_peak_covers_fp32_weights(distilgpt2_result):
    assert distilgpt2_result.peak_rss_bytes >= DISTILGPT2_FP32_WEIGHT_BYTES


def test_distilgpt2_growth_covers_fp32_weights(distilgpt2_result):
    assert distilgpt2_result.peak_rss_growth_bytes >= DISTILGPT2_FP32_WEIGHT_BYTES


def test_distilgpt2_fp32_weight_count(distilgpt2_model):
    assert distilgpt2_model.info.num_parameters * 4 == DISTILGPT2_FP32_WEIGHT_BYTES


def test_int8_smaller_on_disk(distilgpt2_model, settings):
    fp32_bytes = model_size_bytes(TorchBackend(distilgpt2_model, settings))

    int8_bytes = model_size_bytes(TorchInt8DynamicBackend(distilgpt2_model, settings))

    assert int8_bytes < fp32_bytes


def test_fp32_size_covers_weights(distilgpt2_model, settings):
    # The tied lm_head shares wte's storage, which torch.save writes once.
    size = model_size_bytes(TorchBackend(distilgpt2_model, settings))

    assert DISTILGPT2_FP32_WEIGHT_BYTES <= size < 1.05 * DISTILGPT2_FP32_WEIGHT_BYTES


def _file_and_data_bytes(graph) -> int:
    data = graph.with_name(graph.name + ".data")
    return graph.stat().st_size + (data.stat().st_size if data.is_file() else 0)


def test_onnx_size_counts_loaded_graph(tiny_model, settings):
    backend = OnnxRuntimeBackend(tiny_model, settings)

    assert model_size_bytes(backend) == _file_and_data_bytes(backend.graph_path)


def test_onnx_int8_size_counts_int8_graph(tiny_model, settings):
    backend = OnnxRuntimeInt8Backend(tiny_model, settings)

    assert model_size_bytes(backend) == _file_and_data_bytes(backend.graph_path)


def test_onnx_int8_size_excludes_fp32_graph(tiny_model, settings):
    backend = OnnxRuntimeInt8Backend(tiny_model, settings)

    assert model_size_bytes(backend) != onnx_graph_size_bytes(backend.export.graph_path)


def test_onnxruntime_reports_export(tiny_model, settings, export_cache_dir):
    OnnxRuntimeBackend(tiny_model, settings)

    result = measure_isolated("onnxruntime", "synthetic:tiny", THREADS, export_cache_dir, PROMPT_TOKENS, 2, TIMEOUT_S, rounds=1)

    assert result.export_from_cache is True
    assert result.export_s > 0


def test_unsized_backend_rejected():
    class Bare:
        backend_id = "bare"

    with pytest.raises(TypeError, match="'bare'"):
        model_size_bytes(Bare())


def test_unknown_backend_rejected(export_cache_dir):
    with pytest.raises(InvalidOptionError, match="unknown backend id 'no-such-backend'"):
        measure_isolated("no-such-backend", "synthetic:tiny", THREADS, export_cache_dir, PROMPT_TOKENS, 4, TIMEOUT_S)


def test_one_new_token_rejected(export_cache_dir):
    with pytest.raises(InvalidOptionError, match="new_tokens must be at least 2"):
        measure_isolated("torch-fp32", "synthetic:tiny", THREADS, export_cache_dir, PROMPT_TOKENS, 1, TIMEOUT_S)


def test_timeout_raises(export_cache_dir):
    # Importing torch alone takes longer than this.
    with pytest.raises(IsolationError, match="'torch-fp32' timed out after 0.5 s"):
        measure_isolated("torch-fp32", "synthetic:tiny", THREADS, export_cache_dir, PROMPT_TOKENS, 4, timeout_s=0.5)


def test_child_failure_names_backend(missing_model_error):
    assert "backend 'torch-fp32'" in missing_model_error[1]


def test_child_failure_names_exit_code(missing_model_error):
    assert "exit code 1" in missing_model_error[1]


def test_child_failure_quotes_stderr(missing_model_error):
    missing, message = missing_model_error

    assert f"model directory not found: {missing}" in message
