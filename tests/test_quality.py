"""Tests of the quality figures: teacher-forced logit comparison, greedy agreement and perplexity."""

from __future__ import annotations

import json
import math

import pytest
import torch

from perfsuite.backends.torch_fp32 import TorchBackend
from perfsuite.errors import InvalidOptionError, PromptTooLongError
from perfsuite.models.source import load_model
from perfsuite.models.spec import ModelSpec
from perfsuite.prompts import make_prompt
from perfsuite.quality import (
    SYNTHETIC_PERPLEXITY_NOTE,
    backend_perplexity,
    compute_quality,
    perplexity_token_ids,
)

STEPS = 8


@pytest.fixture(scope="module")
def prompts(tiny_model):
    return [make_prompt(tiny_model.tokenizer, 16), make_prompt(tiny_model.tokenizer, 64)]


@pytest.fixture(scope="module")
def self_quality(fp32_backend, prompts):
    return compute_quality(fp32_backend, fp32_backend, prompts, steps=STEPS)


@pytest.fixture(scope="module")
def int8_quality(int8_backend, fp32_backend, prompts):
    return compute_quality(int8_backend, fp32_backend, prompts, steps=STEPS)


@pytest.fixture(scope="module")
def saved_tiny(tiny_model, tmp_path_factory):
    """The tiny model written by save_pretrained and loaded back as a directory, so it is not synthetic."""
    directory = tmp_path_factory.mktemp("saved-tiny")
    tiny_model.model.save_pretrained(directory)
    tiny_model.tokenizer.save_pretrained(directory)
    return load_model(ModelSpec.parse(str(directory)))


@pytest.fixture(scope="module")
def saved_reference(saved_tiny, backend_settings):
    return TorchBackend(saved_tiny, backend_settings)


@pytest.fixture(scope="module")
def saved_quality(saved_reference, prompts):
    return compute_quality(saved_reference, saved_reference, prompts[:1], steps=2, perplexity_tokens=64)


def _full_forward_perplexity(model, token_ids) -> float:
    """exp(mean NLL) from one forward pass over the whole sequence, without the KV cache."""
    input_ids = torch.tensor([token_ids], dtype=torch.int64)
    with torch.inference_mode():
        logits = model(input_ids).logits[0, :-1].double()

    log_probabilities = torch.log_softmax(logits, dim=-1)
    targets = input_ids[0, 1:]
    nll = -log_probabilities[torch.arange(len(targets)), targets]
    return math.exp(nll.mean().item())


def test_self_diff_zero(self_quality):
    assert self_quality.max_abs_logit_diff == 0.0


def test_self_agreement_one(self_quality):
    assert self_quality.greedy_agreement == 1.0


def test_steps_cover_all_prompts(self_quality):
    assert self_quality.steps == 2 * STEPS


def test_steps_per_prompt_recorded(self_quality):
    assert self_quality.steps_per_prompt == STEPS


def test_prompt_lengths_recorded(self_quality):
    assert self_quality.prompt_lengths == (16, 64)


def test_int8_diff_positive(int8_quality):
    assert int8_quality.max_abs_logit_diff > 0.0


def test_int8_diff_finite(int8_quality):
    assert math.isfinite(int8_quality.max_abs_logit_diff)


def test_int8_agreement_is_fraction(int8_quality):
    assert 0.0 <= int8_quality.greedy_agreement <= 1.0


def test_int8_agreement_counts_steps(int8_quality):
    agreed = int8_quality.greedy_agreement * int8_quality.steps

    assert agreed == pytest.approx(round(agreed))


def test_int8_names_both_backends(int8_quality):
    assert (int8_quality.backend_id, int8_quality.reference_id) == ("torch-int8-dynamic", "torch-fp32")


def test_synthetic_perplexity_none(int8_quality):
    assert int8_quality.perplexity is None


def test_synthetic_perplexity_note(int8_quality):
    assert int8_quality.perplexity_note == SYNTHETIC_PERPLEXITY_NOTE


def test_saved_model_not_synthetic(saved_tiny):
    assert not saved_tiny.info.synthetic


def test_perplexity_finite(saved_quality):
    assert math.isfinite(saved_quality.perplexity)


def test_perplexity_has_no_note(saved_quality):
    assert saved_quality.perplexity_note is None


def test_perplexity_matches_full_forward(saved_reference, saved_tiny):
    # 256 tokens fill every position of the tiny model.
    token_ids = perplexity_token_ids(saved_tiny.tokenizer, 256)

    through_backend = backend_perplexity(saved_reference, token_ids)

    expected = _full_forward_perplexity(saved_tiny.model, token_ids)
    assert through_backend == pytest.approx(expected, rel=1e-3)


def test_perplexity_passage_after_prompts(tiny_model):
    # 1024 positions is the maximum of every GPT-2 size, so no prompt is longer than this one.
    longest_prompt = make_prompt(tiny_model.tokenizer, 1024).ids
    passage = perplexity_token_ids(tiny_model.tokenizer, 64)

    starts = range(len(longest_prompt) - len(passage) + 1)
    assert all(longest_prompt[start : start + len(passage)] != passage for start in starts)


def test_perplexity_passage_length(tiny_model):
    assert len(perplexity_token_ids(tiny_model.tokenizer, 256)) == 256


def test_perplexity_too_long_rejected(saved_reference, saved_tiny):
    token_ids = perplexity_token_ids(saved_tiny.tokenizer, 300)

    with pytest.raises(PromptTooLongError):
        backend_perplexity(saved_reference, token_ids)


def test_record_is_json(int8_quality):
    record = json.loads(json.dumps(int8_quality.to_record()))

    assert record["greedy_agreement"] == int8_quality.greedy_agreement


def test_zero_steps_rejected(fp32_backend, prompts):
    with pytest.raises(InvalidOptionError, match="steps must be at least 1"):
        compute_quality(fp32_backend, fp32_backend, prompts, steps=0)


def test_empty_prompts_rejected(fp32_backend):
    with pytest.raises(InvalidOptionError, match="no prompts"):
        compute_quality(fp32_backend, fp32_backend, [])


def test_prompt_too_long_rejected(fp32_backend, tiny_model):
    prompt = make_prompt(tiny_model.tokenizer, 250)

    with pytest.raises(PromptTooLongError):
        compute_quality(fp32_backend, fp32_backend, [prompt], steps=STEPS)


def test_different_models_rejected(fp32_backend, prompts, tmp_path):
    tweaked = load_model(ModelSpec.parse("synthetic:tiny")).model
    with torch.no_grad():
        tweaked.transformer.h[0].mlp.c_fc.bias[0] += 1.0
    tweaked.save_pretrained(tmp_path)
    other = TorchBackend(load_model(ModelSpec.parse(str(tmp_path))), fp32_backend.settings)

    with pytest.raises(InvalidOptionError, match="build both from the same LoadedModel"):
        compute_quality(other, fp32_backend, prompts)
