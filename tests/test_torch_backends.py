"""Tests for the shared greedy loop and the torch backends on real models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from transformers.pytorch_utils import Conv1D

from perfsuite.backends.base import check_prompt_fits
from perfsuite.backends.torch_int8_dynamic import (
    conv1d_to_linear,
    count_int8_modules,
    quantize_dynamic_int8,
)
from perfsuite.errors import PromptTooLongError
from perfsuite.prompts import make_prompt


@pytest.fixture(scope="module")
def prompt_ids(tiny_model):
    return make_prompt(tiny_model.tokenizer, 32).as_batch()


def _reference_greedy(model, input_ids: np.ndarray, new_tokens: int) -> np.ndarray:
    """Greedy decoding without the KV cache: the full sequence is recomputed for each token."""
    sequence = torch.from_numpy(input_ids)
    with torch.inference_mode():
        for _ in range(new_tokens):
            logits = model(input_ids=sequence, use_cache=False).logits[:, -1, :]
            sequence = torch.cat([sequence, logits.argmax(dim=-1, keepdim=True)], dim=1)
    return sequence[:, input_ids.shape[1]:].numpy()


def test_generate_exact_token_count(fp32_backend, prompt_ids):
    generated = fp32_backend.generate(prompt_ids, 7)

    assert generated.shape == (1, 7)
    assert generated.dtype == np.int64


def test_generate_matches_uncached_greedy(fp32_backend, tiny_model, prompt_ids):
    cached = fp32_backend.generate(prompt_ids, 12)

    uncached = _reference_greedy(tiny_model.model, prompt_ids, 12)

    np.testing.assert_array_equal(cached, uncached)


def test_generate_ignores_end_of_text(fp32_backend, tiny_model):
    end_of_text = tiny_model.tokenizer.eos_token_id
    ids = np.full((1, 4), end_of_text, dtype=np.int64)

    generated = fp32_backend.generate(ids, 10)

    assert generated.shape == (1, 10)


def test_first_token_matches_generate(fp32_backend, prompt_ids):
    first = fp32_backend.first_token(prompt_ids)

    assert first.shape == (1,)
    assert first[0] == fp32_backend.generate(prompt_ids, 1)[0, 0]


def test_generate_batch_rows_agree(fp32_backend, prompt_ids):
    batch = np.concatenate([prompt_ids, prompt_ids])

    generated = fp32_backend.generate(batch, 5)

    np.testing.assert_array_equal(generated[0], generated[1])


def test_generate_rejects_zero_tokens(fp32_backend, prompt_ids):
    with pytest.raises(ValueError, match="at least 1"):
        fp32_backend.generate(prompt_ids, 0)


def test_prompt_too_long_names_numbers(fp32_backend, tiny_model):
    n_positions = tiny_model.info.n_positions
    ids = np.zeros((1, n_positions), dtype=np.int64)

    with pytest.raises(PromptTooLongError) as raised:
        fp32_backend.generate(ids, 4)

    message = str(raised.value)
    assert str(n_positions) in message
    assert str(n_positions + 4) in message


def test_prompt_fits_at_limit():
    check_prompt_fits(prompt_tokens=1000, new_tokens=24, n_positions=1024)


def test_tokenize_known_ids(fp32_backend):
    ids = fp32_backend.tokenize("Hello world")

    assert ids.tolist() == [[15496, 995]]


def test_conv1d_to_linear_same_output():
    torch.manual_seed(0)
    conv = Conv1D(nf=12, nx=8)
    nn.init.normal_(conv.bias)
    inputs = torch.randn(3, 5, 8)

    linear = conv1d_to_linear(conv)

    torch.testing.assert_close(linear(inputs), conv(inputs), rtol=1e-6, atol=1e-6)


def test_int8_tiny_quantizes_all_projections(int8_backend, tiny_model):
    expected = 4 * tiny_model.model.config.n_layer + 1

    assert int8_backend.int8_modules == expected
    assert int8_backend.details()["int8_modules"] == expected


def test_int8_leaves_fp32_model_untouched(int8_backend, tiny_model):
    conv_count = sum(isinstance(module, Conv1D) for module in tiny_model.model.modules())

    assert conv_count == 4 * tiny_model.model.config.n_layer
    assert count_int8_modules(tiny_model.model) == 0


def test_int8_logits_close_to_fp32(int8_backend, fp32_backend, prompt_ids):
    fp32_logits, _ = fp32_backend.prefill(prompt_ids)
    int8_logits, _ = int8_backend.prefill(prompt_ids)

    spread = float(fp32_logits.max() - fp32_logits.min())
    difference = float(np.abs(int8_logits - fp32_logits).max())

    # Dynamic int8 rounds each weight to 1/255 of its row's range; a tenth of the logit range bounds the drift.
    assert difference < 0.1 * spread
    assert np.corrcoef(int8_logits.ravel(), fp32_logits.ravel())[0, 1] > 0.99


def test_int8_distilgpt2_covers_25_modules(distilgpt2_model):
    quantized = quantize_dynamic_int8(distilgpt2_model.model)

    assert count_int8_modules(quantized) == 25
    assert not any(isinstance(module, Conv1D) for module in quantized.modules())
