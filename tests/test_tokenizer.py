"""Tests for the packaged GPT-2 tokenizer and the script that builds its files."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import pytest
import tiktoken
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from perfsuite.errors import ModelNotFoundError
from perfsuite.models.tokenizer import (
    END_OF_TEXT,
    create_gpt2_tokenizer,
    load_gpt2_tokenizer,
    packaged_asset_dir,
)

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
BUILD_SCRIPT = REPOSITORY_ROOT / "scripts" / "build_gpt2_tokenizer.py"

# GPT-2's pre-tokenizer pattern: contractions, letter runs, digit runs and other symbol
# runs, each with an optional leading space, then whitespace runs.
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

# Text that mixes arbitrary Unicode with the English-like runs that most merges cover.
TEXT = st.one_of(
    st.text(),
    st.text(alphabet=st.sampled_from(list("the quick brown fox 0123456789 '.,!?-\n\t")), max_size=80),
    st.lists(st.sampled_from(["Hello", " world", " the", "'s", "  ", "\n\n", "123", " ü", "日本"])).map("".join),
)


def _load_build_script():
    spec = importlib.util.spec_from_file_location("build_gpt2_tokenizer", BUILD_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    # dataclasses resolve the module through sys.modules while the class is created.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


build_script = _load_build_script()


@pytest.fixture(scope="module")
def tokenizer():
    return load_gpt2_tokenizer()


@pytest.fixture(scope="module")
def reference_encoding(tokenizer) -> tiktoken.Encoding:
    """tiktoken's BPE over the ranks in the packaged vocab.json, built without network access."""
    vocab = tokenizer.get_vocab()
    return tiktoken.Encoding(
        name="gpt2-reference",
        pat_str=GPT2_PATTERN,
        mergeable_ranks=_ranks_from_vocab(vocab),
        special_tokens={END_OF_TEXT: vocab[END_OF_TEXT]},
    )


def _tiktoken_lines(tokens: list[bytes]) -> bytes:
    """Render a .tiktoken file whose ranks follow the order of ``tokens``."""
    lines = [base64.b64encode(token) + b" " + str(rank).encode() for rank, token in enumerate(tokens)]
    return b"\n".join(lines) + b"\n"


def _ranks_from_vocab(vocab: dict[str, int]) -> dict[bytes, int]:
    """Turn vocab.json entries back into the byte ranks they were built from."""
    unicode_to_byte = {char: value for value, char in build_script.byte_to_unicode_table().items()}
    return {
        bytes(unicode_to_byte[char] for char in token): token_id
        for token, token_id in vocab.items()
        if token != END_OF_TEXT
    }


ALL_SINGLE_BYTES = [bytes([value]) for value in range(256)]


# ---------------------------------------------------------------------------
# Packaged tokenizer: expected ids


def test_encode_hello_world(tokenizer):
    assert tokenizer.encode("Hello world") == [15496, 995]


def test_encode_leading_space_the(tokenizer):
    assert tokenizer.encode(" the") == [262]


def test_encode_end_of_text(tokenizer):
    assert tokenizer.encode(END_OF_TEXT) == [50256]


def test_encode_end_of_text_inside_text(tokenizer):
    assert tokenizer.encode(f"a{END_OF_TEXT}b") == [64, 50256, 65]


def test_decode_keeps_end_of_text(tokenizer):
    text = f"one {END_OF_TEXT} two"
    assert tokenizer.decode(tokenizer.encode(text)) == text


def test_vocab_size(tokenizer):
    assert len(tokenizer) == 50257


def test_special_tokens(tokenizer):
    assert tokenizer.bos_token == END_OF_TEXT
    assert tokenizer.eos_token == END_OF_TEXT
    assert tokenizer.unk_token == END_OF_TEXT
    assert tokenizer.eos_token_id == 50256


def test_model_max_length(tokenizer):
    assert tokenizer.model_max_length == 1024


def test_loader_returns_cached_instance(tokenizer):
    assert load_gpt2_tokenizer() is tokenizer


def test_decode_keeps_space_before_punctuation(tokenizer):
    text = "a , b . c 's"
    assert tokenizer.decode(tokenizer.encode(text)) == text


# ---------------------------------------------------------------------------
# Packaged tokenizer: properties


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_round_trip(tokenizer, text):
    assume(END_OF_TEXT not in text)
    assert tokenizer.decode(tokenizer.encode(text)) == text


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_matches_tiktoken_reference(tokenizer, reference_encoding, text):
    assume(END_OF_TEXT not in text)
    assert tokenizer.encode(text) == reference_encoding.encode_ordinary(text)


# ---------------------------------------------------------------------------
# Packaged tokenizer: missing files


def test_missing_vocab_names_file(tmp_path):
    (tmp_path / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    with pytest.raises(ModelNotFoundError) as caught:
        create_gpt2_tokenizer(tmp_path)
    assert "vocab.json" in str(caught.value)
    assert "scripts/build_gpt2_tokenizer.py" in str(caught.value)


def test_missing_merges_names_file(tmp_path):
    (tmp_path / "vocab.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ModelNotFoundError) as caught:
        create_gpt2_tokenizer(tmp_path)
    assert "merges.txt" in str(caught.value)


def test_packaged_assets_present():
    asset_dir = packaged_asset_dir()
    for name in ("vocab.json", "merges.txt", "NOTICE.md"):
        assert (asset_dir / name).is_file(), name


# ---------------------------------------------------------------------------
# Build script: conversion units


def test_byte_table_is_bijective():
    table = build_script.byte_to_unicode_table()
    assert sorted(table) == list(range(256))
    assert len(set(table.values())) == 256


def test_byte_table_known_characters():
    table = build_script.byte_to_unicode_table()
    assert table[ord("A")] == "A"
    assert table[ord(" ")] == "\u0120"
    assert table[ord("\n")] == "\u010a"
    assert table[0] == "\u0100"


def test_recover_merges_left_first():
    ranks = {b"a": 0, b"b": 1, b"c": 2, b"ab": 3, b"abc": 4}
    assert build_script.recover_merges(ranks) == [(b"a", b"b"), (b"ab", b"c")]


def test_recover_merges_right_first():
    ranks = {b"a": 0, b"b": 1, b"c": 2, b"bc": 3, b"abc": 4}
    assert build_script.recover_merges(ranks) == [(b"b", b"c"), (b"a", b"bc")]


def test_recover_merges_ignores_higher_ranks():
    # "bc" has a higher rank than "abc", so BPE for "abc" must not use it.
    ranks = {b"a": 0, b"b": 1, b"c": 2, b"ab": 3, b"abc": 4, b"bc": 5}
    assert build_script.recover_merges(ranks) == [(b"a", b"b"), (b"ab", b"c"), (b"b", b"c")]


def test_recover_merges_rejects_unreachable_token():
    ranks = {b"a": 0, b"b": 1, b"c": 2, b"abc": 3}
    with pytest.raises(ValueError, match="splits into 3 parts"):
        build_script.recover_merges(ranks)


def test_convert_ranks_tiny_table():
    ranks = {b"a": 0, b"b": 1, b" ": 2, b" a": 3, b" ab": 4}
    vocab_text, merges_text = build_script.convert_ranks(ranks)
    vocab = json.loads(vocab_text)
    assert vocab == {"a": 0, "b": 1, "\u0120": 2, "\u0120a": 3, "\u0120ab": 4, END_OF_TEXT: 50256}
    assert merges_text == "#version: 0.2\n\u0120 a\n\u0120a b\n"


def test_parse_tiktoken_ranks():
    data = _tiktoken_lines([*ALL_SINGLE_BYTES, b"ab"])
    ranks = build_script.parse_tiktoken_ranks(data)
    assert len(ranks) == 257
    assert ranks[b"ab"] == 256


def test_parse_tiktoken_rejects_rank_gap():
    data = _tiktoken_lines(ALL_SINGLE_BYTES) + base64.b64encode(b"ab") + b" 300\n"
    with pytest.raises(ValueError, match="0..n-1"):
        build_script.parse_tiktoken_ranks(data)


def test_parse_tiktoken_rejects_missing_byte():
    data = _tiktoken_lines(ALL_SINGLE_BYTES[1:])
    with pytest.raises(ValueError, match="no rank"):
        build_script.parse_tiktoken_ranks(data)


def test_parse_tiktoken_rejects_bad_base64():
    data = _tiktoken_lines(ALL_SINGLE_BYTES) + b"not*base64 256\n"
    with pytest.raises(ValueError, match="invalid entry"):
        build_script.parse_tiktoken_ranks(data)


# ---------------------------------------------------------------------------
# Build script: committed files and command line


def test_conversion_reproduces_committed_files():
    asset_dir = REPOSITORY_ROOT / "perfsuite" / "assets" / "gpt2"
    committed_vocab = json.loads((asset_dir / "vocab.json").read_text(encoding="utf-8"))
    ranks = _ranks_from_vocab(committed_vocab)
    vocab_text, merges_text = build_script.convert_ranks(ranks)
    assert vocab_text == (asset_dir / "vocab.json").read_text(encoding="utf-8")
    assert merges_text == (asset_dir / "merges.txt").read_text(encoding="utf-8")


def test_main_with_local_tiktoken_file(tmp_path):
    tiktoken_data = _tiktoken_lines([*ALL_SINGLE_BYTES, b"ab"])
    tiktoken_path = tmp_path / "gpt2.tiktoken"
    tiktoken_path.write_bytes(tiktoken_data)
    license_path = tmp_path / "LICENSE"
    license_path.write_text("Test license text\n", encoding="utf-8")
    output_dir = tmp_path / "out"

    exit_code = build_script.main([
        "--tiktoken-file", str(tiktoken_path),
        "--license-file", str(license_path),
        "--output-dir", str(output_dir),
    ])

    assert exit_code == 0
    assert (output_dir / "merges.txt").read_text(encoding="utf-8") == "#version: 0.2\na b\n"
    assert json.loads((output_dir / "vocab.json").read_text(encoding="utf-8"))["ab"] == 256
    notice = (output_dir / "NOTICE.md").read_text(encoding="utf-8")
    assert hashlib.sha256(tiktoken_data).hexdigest() in notice
    assert "Test license text" in notice


def test_main_rejects_tiktoken_file_without_license(tmp_path):
    with pytest.raises(SystemExit) as caught:
        build_script.main(["--tiktoken-file", str(tmp_path / "gpt2.tiktoken")])
    assert caught.value.code == 2


def test_main_reports_invalid_tiktoken_file(tmp_path):
    tiktoken_path = tmp_path / "gpt2.tiktoken"
    tiktoken_path.write_bytes(b"only-one-field\n")
    license_path = tmp_path / "LICENSE"
    license_path.write_text("license\n", encoding="utf-8")
    exit_code = build_script.main([
        "--tiktoken-file", str(tiktoken_path),
        "--license-file", str(license_path),
        "--output-dir", str(tmp_path / "out"),
    ])
    assert exit_code == 1
