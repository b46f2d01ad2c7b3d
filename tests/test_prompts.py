"""Tests for real-text prompts cut at exact token counts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfsuite.errors import InvalidOptionError
from perfsuite.models.tokenizer import load_gpt2_tokenizer
from perfsuite.prompts import corpus_text, make_prompt


@settings(max_examples=40, deadline=None)
@given(n_tokens=st.integers(min_value=1, max_value=1024))
def test_prompt_exact_length(n_tokens):
    prompt = make_prompt(load_gpt2_tokenizer(), n_tokens)

    assert prompt.n_tokens == n_tokens
    assert prompt.as_batch().shape == (1, n_tokens)


def test_prompt_is_corpus_prefix():
    tokenizer = load_gpt2_tokenizer()

    prompt = make_prompt(tokenizer, 128)

    assert corpus_text(10_000).startswith(prompt.text)
    assert tokenizer.decode(list(prompt.ids)) == prompt.text


def test_prompt_batch_repeats_rows():
    batch = make_prompt(load_gpt2_tokenizer(), 16).as_batch(3)

    assert batch.shape == (3, 16)
    assert (batch[0] == batch[2]).all()


@pytest.mark.parametrize("n_tokens", [0, -5])
def test_prompt_nonpositive_rejected(n_tokens):
    with pytest.raises(InvalidOptionError, match=str(n_tokens)):
        make_prompt(load_gpt2_tokenizer(), n_tokens)
