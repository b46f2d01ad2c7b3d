"""Tests for loading models from directories, the hub cache and synthetic presets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from perfsuite.errors import ModelNotFoundError, UnsupportedModelError
from perfsuite.models.fingerprint import fingerprint_model
from perfsuite.models.source import load_model
from perfsuite.models.spec import ModelSpec, SpecKind
from perfsuite.models.synthetic import SYNTHETIC_PRESETS, build_synthetic_model


@pytest.fixture(scope="module")
def saved_tiny_dir(tiny_model, tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("saved") / "tiny-gpt2"
    tiny_model.model.save_pretrained(directory)
    tiny_model.tokenizer.save_pretrained(directory)
    return directory


def test_synthetic_distilgpt2_geometry():
    loaded = load_model(ModelSpec.parse("synthetic:distilgpt2"))
    config = loaded.model.config

    assert (config.n_layer, config.n_head, config.n_embd) == (6, 12, 768)
    assert config.n_positions == 1024
    assert config.vocab_size == 50257
    assert loaded.info.num_parameters == 81_912_576
    assert loaded.info.synthetic
    assert "SYNTHETIC" in loaded.info.describe()


def test_synthetic_weights_repeat():
    preset = SYNTHETIC_PRESETS["tiny"]

    first = fingerprint_model(build_synthetic_model(preset))
    second = fingerprint_model(build_synthetic_model(preset))

    assert first == second


def test_synthetic_build_keeps_global_rng():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)

    build_synthetic_model(SYNTHETIC_PRESETS["tiny"])

    assert torch.equal(torch.rand(3), expected)


def test_fingerprint_changes_with_one_weight(tiny_model):
    model = build_synthetic_model(SYNTHETIC_PRESETS["tiny"])
    before = fingerprint_model(model)

    with torch.no_grad():
        model.transformer.h[0].mlp.c_fc.bias[0] += 1e-3

    assert fingerprint_model(model) != before
    assert before == tiny_model.info.fingerprint


def test_load_saved_directory(saved_tiny_dir, tiny_model):
    loaded = load_model(ModelSpec.parse(str(saved_tiny_dir)))

    assert loaded.info.kind is SpecKind.LOCAL_DIR
    assert loaded.info.fingerprint == tiny_model.info.fingerprint
    assert not loaded.model.training
    assert loaded.tokenizer.encode("Hello world") == [15496, 995]


def test_missing_directory_named(tmp_path):
    missing = tmp_path / "nowhere"

    with pytest.raises(ModelNotFoundError) as raised:
        load_model(ModelSpec.parse(str(missing)))

    assert str(missing) in str(raised.value)


@pytest.mark.parametrize("removed", ["config.json", "model.safetensors"])
def test_missing_file_named(saved_tiny_dir, tmp_path, removed):
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in saved_tiny_dir.iterdir():
        if path.name != removed:
            (broken / path.name).write_bytes(path.read_bytes())

    with pytest.raises(ModelNotFoundError) as raised:
        load_model(ModelSpec.parse(str(broken)))

    message = str(raised.value)
    assert str(broken) in message
    assert removed.split(".")[0] in message or "weights" in message


def test_non_gpt2_rejected(saved_tiny_dir, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    for path in saved_tiny_dir.iterdir():
        (other / path.name).write_bytes(path.read_bytes())
    config = json.loads((other / "config.json").read_text())
    config["model_type"] = "gpt_neo"
    (other / "config.json").write_text(json.dumps(config))

    with pytest.raises(UnsupportedModelError, match="gpt_neo"):
        load_model(ModelSpec.parse(str(other)))


def _load_in_subprocess(spec: str, hub_cache: Path) -> dict:
    """Load ``spec`` in a fresh interpreter whose hub cache is ``hub_cache`` and no network is tried."""
    code = (
        "import json, sys\n"
        "from perfsuite.models.source import load_model\n"
        "from perfsuite.models.spec import ModelSpec\n"
        "from perfsuite.errors import ModelNotFoundError\n"
        "try:\n"
        "    info = load_model(ModelSpec.parse(sys.argv[1])).info\n"
        "    print(json.dumps(info.to_record()))\n"
        "except ModelNotFoundError as error:\n"
        "    print(json.dumps({'error': str(error)}))\n"
    )
    env = {**os.environ, "HF_HUB_CACHE": str(hub_cache), "HF_HUB_OFFLINE": "1"}
    completed = subprocess.run(
        [sys.executable, "-c", code, spec], env=env, capture_output=True, text=True, timeout=300, check=True
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_hub_cache_used_offline(saved_tiny_dir, tiny_model, tmp_path):
    revision = "0" * 40
    repository = tmp_path / "hub" / "models--perfsuite-tests--tiny-gpt2"
    (repository / "refs").mkdir(parents=True)
    (repository / "refs" / "main").write_text(revision)
    snapshot = repository / "snapshots" / revision
    snapshot.mkdir(parents=True)
    for path in saved_tiny_dir.iterdir():
        (snapshot / path.name).write_bytes(path.read_bytes())

    record = _load_in_subprocess("perfsuite-tests/tiny-gpt2", tmp_path / "hub")

    assert record["source"] == "hub"
    assert record["fingerprint"] == tiny_model.info.fingerprint
    assert record["fallback_reason"] is None


def test_uncached_distilgpt2_falls_back(tmp_path):
    record = _load_in_subprocess("distilgpt2", tmp_path / "empty-hub")

    assert record["source"] == "synthetic"
    assert record["requested"] == "distilgpt2"
    assert "HF_HUB_OFFLINE" in record["fallback_reason"]


def test_uncached_unknown_id_fails(tmp_path):
    record = _load_in_subprocess("perfsuite-tests/absent", tmp_path / "empty-hub")

    assert "perfsuite-tests/absent" in record["error"]
    assert "synthetic:distilgpt2" in record["error"]
