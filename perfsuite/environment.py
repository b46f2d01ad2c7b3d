"""The environment stamp: library versions and settings saved next to every result."""

from __future__ import annotations

import importlib.metadata
import platform

TRACKED_DISTRIBUTIONS = ("torch", "transformers", "tokenizers", "onnxruntime", "onnx", "numpy", "pytest-benchmark")


def library_versions() -> dict[str, str]:
    """Return the installed version of each tracked distribution, or ``"not installed"``."""
    versions = {"python": platform.python_version(), "perfsuite": _version_of("llm-perfsuite")}
    for name in TRACKED_DISTRIBUTIONS:
        versions[name] = _version_of(name)
    return versions


def _version_of(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"
