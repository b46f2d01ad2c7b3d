"""Shared fixtures: tiny models saved and built by the tests themselves, never downloaded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from perfsuite.backends.base import BackendSettings
from perfsuite.backends.torch_fp32 import TorchBackend
from perfsuite.backends.torch_int8_dynamic import TorchInt8DynamicBackend
from perfsuite.models.source import LoadedModel, load_model
from perfsuite.models.spec import ModelSpec

BENCHMARK_DIR = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="session")
def tiny_model() -> LoadedModel:
    """The synthetic 2-layer GPT-2 with the real GPT-2 vocabulary."""
    return load_model(ModelSpec.parse("synthetic:tiny"))


@pytest.fixture(scope="session")
def export_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ONNX export cache: $PERFSUITE_CACHE_DIR when set, so CI exports each model once."""
    configured = os.environ.get("PERFSUITE_CACHE_DIR")
    if configured:
        return Path(configured)
    return tmp_path_factory.mktemp("perfsuite-cache")


@pytest.fixture(scope="session")
def backend_settings(export_cache_dir: Path) -> BackendSettings:
    return BackendSettings(threads=2, cache_dir=export_cache_dir)


@pytest.fixture(scope="session")
def fp32_backend(tiny_model, backend_settings) -> TorchBackend:
    """torch-fp32 on the tiny model: the reference of the backend and quality tests."""
    return TorchBackend(tiny_model, backend_settings)


@pytest.fixture(scope="session")
def int8_backend(tiny_model, backend_settings) -> TorchInt8DynamicBackend:
    return TorchInt8DynamicBackend(tiny_model, backend_settings)


@pytest.fixture(scope="session")
def distilgpt2_model() -> LoadedModel:
    """The synthetic model with distilgpt2's geometry, shared by the tests that need full size."""
    return load_model(ModelSpec.parse("synthetic:distilgpt2"))


@pytest.fixture
def suite(pytester: pytest.Pytester, export_cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A folder with the repository's benchmark modules and the plugin, as a checkout has them."""
    pytester.makeconftest('pytest_plugins = ("perfsuite.pytest_plugin",)')
    for module in BENCHMARK_DIR.glob("test_*.py"):
        pytester.makepyfile(**{module.stem: module.read_text()})

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("PERFSUITE_CACHE_DIR", str(export_cache_dir))
    for variable in ("PERFSUITE_MODEL", "PERFSUITE_BACKENDS", "PERFSUITE_TEST_SLOWDOWN", "PERFSUITE_QUICK"):
        monkeypatch.delenv(variable, raising=False)
    return pytester
