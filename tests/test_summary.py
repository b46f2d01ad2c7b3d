"""Tests for the terminal summary built from finished benchmark results."""

from __future__ import annotations

from perfsuite.report.summary import backend_row, headline_result, _int8_notes
from perfsuite.session import BenchmarkResult, harness_overhead_notes


def _generate(backend_id: str, decode_s: float, threads: int = 2, batch: int = 1, prompt: int = 128) -> BenchmarkResult:
    info = {
        "phase": "generate",
        "batch_size": batch,
        "threads": threads,
        "prompt_tokens": prompt,
        "new_tokens": 64,
        "median_s": decode_s * 64,
        "metrics": {
            "time_to_first_token_s": {"values": [0.1, 0.3, 0.2]},
            "decode_tokens_per_second": {"values": [1 / decode_s]},
        },
        "decode_token_percentiles_s": {"p50": decode_s, "p90": decode_s * 1.1, "p99": decode_s * 1.2},
    }
    return BenchmarkResult(backend_id, None, info)


def test_headline_prefers_batch_one_most_threads():
    results = [
        _generate("torch-fp32", 0.02, threads=1),
        _generate("torch-fp32", 0.03, batch=4),
        _generate("torch-fp32", 0.01, threads=2),
    ]

    chosen = headline_result(results, "torch-fp32")

    assert chosen is results[2]


def test_row_reads_medians():
    row = backend_row(_generate("torch-fp32", 0.02), "torch-fp32", {})

    assert row.time_to_first_token_s == 0.2
    assert row.decode_p50_s == 0.02
    assert row.decode_tokens_per_second == 50


def test_int8_slower_said_plainly():
    rows = [
        backend_row(_generate("onnxruntime", 0.010), "onnxruntime", {}),
        backend_row(_generate("onnxruntime-int8", 0.022), "onnxruntime-int8", {}),
    ]

    notes = _int8_notes(rows)

    assert notes == ["NOTE: onnxruntime-int8 decodes 2.20x SLOWER than onnxruntime on this CPU; int8 does not pay off here."]


def test_int8_faster_reported():
    rows = [
        backend_row(_generate("torch-fp32", 0.027), "torch-fp32", {}),
        backend_row(_generate("torch-int8-dynamic", 0.010), "torch-int8-dynamic", {}),
    ]

    assert _int8_notes(rows) == ["torch-int8-dynamic decodes 2.70x faster than torch-fp32."]


def test_overhead_share_of_fastest():
    fast = BenchmarkResult("torch-fp32", None, {"phase": "tokenize", "new_tokens": 0, "median_s": 1e-5})
    slow = _generate("torch-fp32", 0.02)

    notes = harness_overhead_notes([fast, slow], clock_cost_s=1e-8)

    assert len(notes) == 1
    assert "0.200%" in notes[0]
    assert "tokenize" in notes[0]


def test_overhead_above_limit_flagged():
    fast = BenchmarkResult("torch-fp32", None, {"phase": "tokenize", "new_tokens": 0, "median_s": 1e-6})

    notes = harness_overhead_notes([fast], clock_cost_s=1e-8)

    assert notes[0].startswith("NOTE: ")
    assert "above the 1% limit" in notes[0]


def test_int8_note_flags_unstable():
    unstable = _generate("torch-int8-dynamic", 0.010)
    unstable.extra_info["stability_problems"] = ["rounds vary widely"]
    rows = [
        backend_row(_generate("torch-fp32", 0.027), "torch-fp32", {}),
        backend_row(unstable, "torch-int8-dynamic", {}),
    ]

    notes = _int8_notes(rows)

    assert rows[1].unstable
    assert notes == ["torch-int8-dynamic decodes 2.70x faster than torch-fp32 (unstable rounds: confirm with a quieter or longer run)."]
