"""Export a tiny random GPT-2 with past key/values and check onnxruntime against torch."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from transformers import DynamicCache, GPT2Config, GPT2LMHeadModel

from perfsuite.backends.onnx_export import (
    EXPORTER,
    ExportResult,
    export_gpt2_with_past,
    input_names,
    optimize_for_onnxruntime,
    output_names,
)

NUM_LAYERS = 2
NUM_HEADS = 2
HIDDEN_SIZE = 32
HEAD_DIM = HIDDEN_SIZE // NUM_HEADS
VOCAB_SIZE = 1000
PROMPT_LENGTH = 7
GREEDY_STEPS = 16


def tiny_model() -> GPT2LMHeadModel:
    torch.manual_seed(0)
    config = GPT2Config(
        n_layer=NUM_LAYERS,
        n_head=NUM_HEADS,
        n_embd=HIDDEN_SIZE,
        vocab_size=VOCAB_SIZE,
        n_positions=128,
    )
    return GPT2LMHeadModel(config).eval()


@dataclass(frozen=True)
class Exported:
    model: GPT2LMHeadModel
    attention_before_export: str
    result: ExportResult
    session: onnxruntime.InferenceSession


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    model = tiny_model()
    attention_before_export = model.config._attn_implementation

    result = export_gpt2_with_past(model, tmp_path_factory.mktemp("onnx") / "gpt2.onnx")

    session = onnxruntime.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    return Exported(model, attention_before_export, result, session)


def prompt_ids(batch: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, VOCAB_SIZE, size=(batch, PROMPT_LENGTH), dtype=np.int64)


def empty_past(batch: int) -> list[np.ndarray]:
    return [np.zeros((batch, NUM_HEADS, 0, HEAD_DIM), dtype=np.float32) for _ in range(2 * NUM_LAYERS)]


def run_step(
    session: onnxruntime.InferenceSession, token_ids: np.ndarray, start_position: int, past: list[np.ndarray]
) -> tuple[np.ndarray, list[np.ndarray]]:
    batch, length = token_ids.shape
    positions = np.arange(start_position, start_position + length, dtype=np.int64)
    feed = {
        "input_ids": token_ids,
        "position_ids": np.broadcast_to(positions, (batch, length)).copy(),
        **dict(zip(input_names(NUM_LAYERS)[2:], past)),
    }
    logits, *presents = session.run(None, feed)
    return logits, presents


def torch_step(
    model: GPT2LMHeadModel, token_ids: np.ndarray, cache: DynamicCache | None
) -> tuple[np.ndarray, DynamicCache]:
    with torch.inference_mode():
        output = model(input_ids=torch.from_numpy(token_ids), cache=cache, use_cache=True)
    return output.logits[:, -1, :].numpy(), output.cache


def onnx_greedy(session: onnxruntime.InferenceSession, prompt: np.ndarray) -> np.ndarray:
    logits, past = run_step(session, prompt, 0, empty_past(prompt.shape[0]))
    tokens = [logits.argmax(axis=-1)]
    for step in range(GREEDY_STEPS - 1):
        logits, past = run_step(session, tokens[-1][:, None], PROMPT_LENGTH + step, past)
        tokens.append(logits.argmax(axis=-1))
    return np.stack(tokens, axis=1)


def torch_greedy(model: GPT2LMHeadModel, prompt: np.ndarray) -> np.ndarray:
    logits, cache = torch_step(model, prompt, None)
    tokens = [logits.argmax(axis=-1)]
    for _ in range(GREEDY_STEPS - 1):
        logits, cache = torch_step(model, tokens[-1][:, None], cache)
        tokens.append(logits.argmax(axis=-1))
    return np.stack(tokens, axis=1)


def graph_shapes(path: Path) -> dict[str, list[str | int]]:
    graph = onnx.load(str(path), load_external_data=False).graph
    shapes = {}
    for value in [*graph.input, *graph.output]:
        shapes[value.name] = [dim.dim_param or dim.dim_value for dim in value.type.tensor_type.shape.dim]
    return shapes


def test_graph_input_names(exported: Exported) -> None:
    graph = onnx.load(str(exported.result.path), load_external_data=False).graph
    assert [value.name for value in graph.input] == input_names(NUM_LAYERS)


def test_graph_output_names(exported: Exported) -> None:
    graph = onnx.load(str(exported.result.path), load_external_data=False).graph
    assert [value.name for value in graph.output] == output_names(NUM_LAYERS)


def test_graph_dynamic_past_shape(exported: Exported) -> None:
    shapes = graph_shapes(exported.result.path)
    assert shapes["past_key_0"] == ["batch", NUM_HEADS, "past_seq", HEAD_DIM]


def test_graph_logits_shape(exported: Exported) -> None:
    shapes = graph_shapes(exported.result.path)
    assert shapes["logits"] == ["batch", VOCAB_SIZE]


def test_export_result_fields(exported: Exported) -> None:
    assert exported.result.num_layers == NUM_LAYERS
    assert exported.result.exporter == EXPORTER
    assert exported.result.seconds > 0


def test_prefill_logits_match_torch(exported: Exported) -> None:
    prompt = prompt_ids(batch=1)
    onnx_logits, _ = run_step(exported.session, prompt, 0, empty_past(1))
    with torch.inference_mode():
        torch_logits = exported.model(torch.from_numpy(prompt)).logits[:, -1, :].numpy()
    np.testing.assert_allclose(onnx_logits, torch_logits, rtol=0, atol=1e-4)


def test_prefill_presents_match_torch_cache(exported: Exported) -> None:
    # Layer 1 keys depend on every prompt position of layer 0, so a wrong causal mask changes them.
    prompt = prompt_ids(batch=1)
    _, presents = run_step(exported.session, prompt, 0, empty_past(1))
    _, cache = torch_step(exported.model, prompt, None)
    last_layer = cache.layers[NUM_LAYERS - 1]
    np.testing.assert_allclose(presents[-2], last_layer.keys.numpy(), rtol=0, atol=1e-4)
    np.testing.assert_allclose(presents[-1], last_layer.values.numpy(), rtol=0, atol=1e-4)


def test_prefill_in_two_chunks(exported: Exported) -> None:
    prompt = prompt_ids(batch=1)
    full_logits, _ = run_step(exported.session, prompt, 0, empty_past(1))

    _, past = run_step(exported.session, prompt[:, :3], 0, empty_past(1))
    chunked_logits, _ = run_step(exported.session, prompt[:, 3:], 3, past)
    np.testing.assert_allclose(chunked_logits, full_logits, rtol=0, atol=1e-5)


def test_greedy_tokens_match_torch(exported: Exported) -> None:
    prompt = prompt_ids(batch=1)
    np.testing.assert_array_equal(onnx_greedy(exported.session, prompt), torch_greedy(exported.model, prompt))


def test_present_shapes_after_decode(exported: Exported) -> None:
    prompt = prompt_ids(batch=1)
    logits, past = run_step(exported.session, prompt, 0, empty_past(1))
    next_token = logits.argmax(axis=-1)[:, None]
    _, presents = run_step(exported.session, next_token, PROMPT_LENGTH, past)

    expected = (1, NUM_HEADS, PROMPT_LENGTH + 1, HEAD_DIM)
    assert [present.shape for present in presents] == [expected] * (2 * NUM_LAYERS)


def test_batch_of_two_greedy(exported: Exported) -> None:
    prompt = prompt_ids(batch=2)
    np.testing.assert_array_equal(onnx_greedy(exported.session, prompt), torch_greedy(exported.model, prompt))


def test_batch_of_two_rows_differ(exported: Exported) -> None:
    logits, _ = run_step(exported.session, prompt_ids(batch=2), 0, empty_past(2))
    assert not np.allclose(logits[0], logits[1])


def test_caller_model_stays_eval(exported: Exported) -> None:
    assert not exported.model.training


def test_caller_attention_unchanged(exported: Exported) -> None:
    assert exported.model.config._attn_implementation == exported.attention_before_export


def test_caller_train_mode_kept(tmp_path: Path) -> None:
    model = tiny_model().train()
    export_gpt2_with_past(model, tmp_path / "gpt2.onnx")
    assert model.training


def test_export_logs_start_and_end(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="perfsuite.backends.onnx_export"):
        export_gpt2_with_past(tiny_model(), tmp_path / "gpt2.onnx")
    messages = [record.getMessage() for record in caplog.records if record.name == "perfsuite.backends.onnx_export"]
    assert any(message.endswith("started") for message in messages)
    assert any("finished in" in message for message in messages)


def test_export_rejects_other_models(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="GPT2LMHeadModel"):
        export_gpt2_with_past(torch.nn.Linear(2, 2), tmp_path / "linear.onnx")


def test_optimizer_zero_bias_fallback(
    exported: Exported, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A freshly initialized GPT-2 has all-zero biases, which the exporter drops from its Gemm nodes.
    fused_path = tmp_path / "fused.onnx"
    with caplog.at_level(logging.WARNING, logger="perfsuite.backends.onnx_export"):
        fusions = optimize_for_onnxruntime(exported.result.path, fused_path)
    assert fusions == []
    assert not fused_path.exists()
    assert "IndexError" in caplog.text


def test_optimizer_fuses_with_biases(tmp_path: Path) -> None:
    model = tiny_model()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("bias"):
                parameter.normal_(0.0, 0.02)
    result = export_gpt2_with_past(model, tmp_path / "gpt2.onnx")
    fused_path = tmp_path / "fused.onnx"

    fusions = optimize_for_onnxruntime(result.path, fused_path, require_speedup=False)

    assert "SkipLayerNormalization" in fusions
    assert fused_path.exists()

    session = onnxruntime.InferenceSession(str(fused_path), providers=["CPUExecutionProvider"])
    prompt = prompt_ids(batch=1)
    np.testing.assert_array_equal(onnx_greedy(session, prompt), torch_greedy(model, prompt))
