"""Builders of pytest-benchmark JSON documents shaped like perfsuite's saved runs.

Shared by the test_compare_*, test_report_* and test_cli modules, which import it as a
sibling module (pytest's default import mode puts tests/ on sys.path). It contains no tests.
The field names and nesting follow a run saved by
``pytest benchmarks/ --perf-quick --benchmark-save-data`` with pytest-benchmark 5.3.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

VERSIONS = {
    "python": "3.11.7",
    "perfsuite": "0.1.0",
    "torch": "2.13.0+cpu",
    "transformers": "5.25.0",
    "tokenizers": "0.23.3",
    "onnxruntime": "1.32.0",
    "onnx": "1.23.2",
    "numpy": "2.4.6",
    "pytest-benchmark": "5.3.1",
}

MACHINE_INFO: dict[str, Any] = {
    "node": "runner-1",
    "processor": "",
    "machine": "x86_64",
    "python_implementation": "CPython",
    "python_version": "3.11.7",
    "release": "6.18.44",
    "system": "Linux",
    "cpu": {"arch": "X86_64", "bits": 64, "count": 2, "brand_raw": "AMD EPYC", "vendor_id_raw": "AuthenticAMD"},
    "perfsuite": {
        "model": "synthetic:tiny",
        "backends": ["torch-fp32"],
        "threads": 2,
        "profile": "quick",
        "versions": VERSIONS,
    },
}


def noisy_rounds(median: float, rounds: int, seed: int, spread: float = 0.02) -> list[float]:
    """Return ``rounds`` positive values scattered log-normally around ``median``."""
    generator = np.random.default_rng(seed)
    return [float(value) for value in median * np.exp(generator.normal(0.0, spread, rounds))]


def metric(values: Sequence[float], unit: str = "s", direction: str = "lower") -> dict[str, Any]:
    return {"unit": unit, "direction": direction, "values": list(values)}


def benchmark_entry(
    name: str = "test_generate[torch-fp32-16]",
    data: Sequence[float] | None = None,
    metrics: dict[str, Any] | None = None,
    **extra_info: Any,
) -> dict[str, Any]:
    """Return one benchmark entry; ``extra_info`` keys replace the defaults."""
    module = name.split("[")[0]
    backend = name.split("[")[1].rsplit("-", 1)[0] if "[" in name else "torch-fp32"
    data = list(data) if data is not None else noisy_rounds(0.01, 10, seed=1)
    info: dict[str, Any] = {
        "backend": backend,
        "phase": "generate",
        "prompt_tokens": 16,
        "new_tokens": 8,
        "batch_size": 1,
        "rounds": len(data),
        "warmup_rounds": 1,
        "profile": "quick",
        "backend_settings": {"threads": 2, "torch_threads": 2, "dtype": "float32"},
        "versions": VERSIONS,
        "threads": 2,
        "model": {"requested": "synthetic:tiny", "source": "synthetic", "fingerprint": "e69b25ce4685ca87"},
    }
    info.update(extra_info)
    if metrics is not None:
        info["metrics"] = metrics

    return {
        "group": "generate: prompt 16, new 8",
        "name": name,
        "fullname": f"benchmarks/{module}.py::{name}",
        "params": {"perf_backend": backend, "prompt_length": 16},
        "param": name.split("[")[-1].rstrip("]"),
        "extra_info": info,
        "options": {"timer": "perf_counter", "min_rounds": 5},
        "stats": {
            "min": min(data) if data else 0.0,
            "max": max(data) if data else 0.0,
            "median": float(np.median(data)) if data else 0.0,
            "rounds": len(data),
            "iterations": 1,
            "data": data,
        },
    }


def run_document(entries: Sequence[dict[str, Any]], **machine_changes: Any) -> dict[str, Any]:
    """Return a whole saved run; ``machine_changes`` replace top-level machine_info keys."""
    machine_info = copy.deepcopy(MACHINE_INFO)
    machine_info.update(machine_changes)
    return {
        "machine_info": machine_info,
        "commit_info": {"id": "0" * 40, "dirty": False, "project": "llm-perfsuite", "branch": "main"},
        "benchmarks": list(entries),
        "datetime": "2026-12-04T20:03:56+00:00",
        "version": "5.3.1",
    }


def write_run(path: Path, entries: Sequence[dict[str, Any]], **machine_changes: Any) -> Path:
    """Write a saved run to ``path`` and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(run_document(entries, **machine_changes)), encoding="utf-8")
    return path


def write_document(path: Path, document: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document), encoding="utf-8")
    return path
