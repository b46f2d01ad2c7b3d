"""Tests for parsing --perf-model values."""

from __future__ import annotations

import pytest

from perfsuite.errors import InvalidOptionError
from perfsuite.models.spec import ModelSpec, SpecKind


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("distilgpt2", SpecKind.HUB, "distilgpt2"),
        ("openai-community/gpt2", SpecKind.HUB, "openai-community/gpt2"),
        ("synthetic:distilgpt2", SpecKind.SYNTHETIC, "distilgpt2"),
        ("synthetic:tiny", SpecKind.SYNTHETIC, "tiny"),
        ("/models/my-gpt2", SpecKind.LOCAL_DIR, "/models/my-gpt2"),
        ("./my-gpt2", SpecKind.LOCAL_DIR, "my-gpt2"),
    ],
)
def test_parse_kinds(text, kind, value):
    spec = ModelSpec.parse(text)

    assert spec.kind is kind
    assert spec.value == value


def test_parse_existing_relative_directory(tmp_path, monkeypatch):
    (tmp_path / "saved").mkdir()
    monkeypatch.chdir(tmp_path)

    spec = ModelSpec.parse("saved")

    assert spec.kind is SpecKind.LOCAL_DIR


def test_parse_unknown_synthetic_lists_presets():
    with pytest.raises(InvalidOptionError) as raised:
        ModelSpec.parse("synthetic:gpt5")

    assert "synthetic:gpt5" in str(raised.value)
    assert "synthetic:distilgpt2" in str(raised.value)


def test_parse_empty_rejected():
    with pytest.raises(InvalidOptionError, match="empty"):
        ModelSpec.parse("  ")


def test_str_round_trips():
    for text in ("distilgpt2", "synthetic:tiny", "/models/x"):
        assert str(ModelSpec.parse(text)) == text
