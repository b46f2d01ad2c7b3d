"""Parity of the onnxruntime backend with torch-fp32 on real prompts, at distilgpt2's geometry."""

from __future__ import annotations

import numpy as np
import pytest

from perfsuite.backends.onnxruntime_backend import OnnxRuntimeBackend
from perfsuite.backends.torch_fp32 import TorchBackend
from perfsuite.prompts import make_prompt

# onnxruntime's own GPT-2 tooling checks fp32 parity at 5e-4; this suite allows 1e-3.
LOGIT_TOLERANCE = 1e-3
GREEDY_STEPS = 32


@pytest.fixture(scope="module")
def backends(distilgpt2_model, backend_settings):
    onnx = OnnxRuntimeBackend(distilgpt2_model, backend_settings)
    return TorchBackend(distilgpt2_model, backend_settings), onnx


def _step_logits(backend, input_ids: np.ndarray, steps: int) -> list[np.ndarray]:
    """Return the logits of the prefill and of each greedy decode step."""
    logits, state = backend.prefill(input_ids)
    history = [logits]
    for _ in range(steps - 1):
        logits, state = backend.decode(logits.argmax(axis=-1)[:, None], state)
        history.append(logits)
    return history


def test_export_keeps_model_in_eval(backends, distilgpt2_model):
    assert not distilgpt2_model.model.training
    assert not any(module.training for module in distilgpt2_model.model.modules())


@pytest.mark.parametrize("prompt_tokens", [16, 128])
def test_onnx_logits_match_torch(backends, distilgpt2_model, prompt_tokens):
    torch_backend, onnx_backend = backends
    ids = make_prompt(distilgpt2_model.tokenizer, prompt_tokens).as_batch()

    torch_history = _step_logits(torch_backend, ids, GREEDY_STEPS)
    onnx_history = _step_logits(onnx_backend, ids, GREEDY_STEPS)

    worst = max(float(np.abs(a - b).max()) for a, b in zip(torch_history, onnx_history))
    assert worst < LOGIT_TOLERANCE


@pytest.mark.parametrize("prompt_tokens", [16, 128])
def test_onnx_greedy_tokens_agree(backends, distilgpt2_model, prompt_tokens):
    torch_backend, onnx_backend = backends
    ids = make_prompt(distilgpt2_model.tokenizer, prompt_tokens).as_batch()

    expected = torch_backend.generate(ids, GREEDY_STEPS)
    actual = onnx_backend.generate(ids, GREEDY_STEPS)

    np.testing.assert_array_equal(actual, expected)


def test_onnx_batch_of_two(backends, distilgpt2_model):
    torch_backend, onnx_backend = backends
    single = make_prompt(distilgpt2_model.tokenizer, 16)
    batch = np.concatenate([single.as_batch(), make_prompt(distilgpt2_model.tokenizer, 17).as_batch()[:, 1:]])

    np.testing.assert_array_equal(onnx_backend.generate(batch, 8), torch_backend.generate(batch, 8))


def test_onnx_export_reused_from_cache(distilgpt2_model, backend_settings, backends):
    again = OnnxRuntimeBackend(distilgpt2_model, backend_settings)

    assert again.export.from_cache
    assert again.export.directory == backends[1].export.directory
