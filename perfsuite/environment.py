"""The environment stamp: what the machine, libraries and settings were when figures were taken."""

from __future__ import annotations

import functools
import importlib.metadata
import platform
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

TRACKED_DISTRIBUTIONS = ("torch", "transformers", "tokenizers", "onnxruntime", "onnx", "numpy", "pytest-benchmark")

# CPU flags (as /proc/cpuinfo names them) that select different int8 and fp32 kernels.
KERNEL_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")


@dataclass(frozen=True)
class EnvironmentStamp:
    """The machine and software a run used; a difference makes two runs incomparable."""

    cpu_model: str
    physical_cores: int
    logical_cores: int
    kernel_flags: tuple[str, ...]
    quantized_engine: str
    versions: dict[str, str]
    commit: str | None

    def to_record(self, include_commit: bool = True) -> dict[str, object]:
        """Return the stamp as JSON-ready values; without the commit for pytest-benchmark's machine_info,
        which would otherwise differ between every two commits compared (commit_info has it)."""
        record = asdict(self)
        record["kernel_flags"] = list(self.kernel_flags)
        if not include_commit:
            del record["commit"]
        return record

    def header_lines(self) -> list[str]:
        flags = ", ".join(self.kernel_flags) or "none of " + ", ".join(KERNEL_FLAGS)
        versions = ", ".join(f"{name} {version}" for name, version in self.versions.items() if name != "python")
        return [
            f"CPU {self.cpu_model}: {self.physical_cores} physical / {self.logical_cores} logical cores; "
            f"kernel flags: {flags}; torch quantized engine {self.quantized_engine}",
            f"python {self.versions['python']}, {versions}; commit {self.commit or 'unknown'}",
        ]


@functools.lru_cache(maxsize=1)
def collect_environment() -> EnvironmentStamp:
    """Collect the stamp once per process."""
    import torch

    cpuinfo = _read_cpuinfo()
    return EnvironmentStamp(
        cpu_model=cpuinfo.get("model name") or platform.processor() or platform.machine(),
        physical_cores=psutil.cpu_count(logical=False) or 0,
        logical_cores=psutil.cpu_count(logical=True) or 0,
        kernel_flags=tuple(flag for flag in KERNEL_FLAGS if flag in cpuinfo.get("flags", "").split()),
        quantized_engine=torch.backends.quantized.engine,
        versions=library_versions(),
        commit=current_commit(),
    )


def library_versions() -> dict[str, str]:
    """Return the installed version of each tracked distribution, or ``"not installed"``."""
    versions = {"python": platform.python_version(), "perfsuite": _version_of("llm-perfsuite")}
    for name in TRACKED_DISTRIBUTIONS:
        versions[name] = _version_of(name)
    return versions


def current_commit(directory: Path | None = None) -> str | None:
    """Return the git commit of ``directory`` (default: the working directory), with ``-dirty`` for local edits."""
    try:
        commit = _git(["rev-parse", "HEAD"], directory)
        dirty = _git(["status", "--porcelain", "--untracked-files=no"], directory)
    except (OSError, subprocess.SubprocessError):
        return None
    if not commit:
        return None
    return f"{commit}-dirty" if dirty else commit


def _git(arguments: list[str], directory: Path | None) -> str:
    completed = subprocess.run(
        ["git", *arguments], cwd=directory, capture_output=True, text=True, timeout=10, check=True
    )
    return completed.stdout.strip()


def _read_cpuinfo() -> dict[str, str]:
    # Linux only; elsewhere the model falls back to platform.processor() and no flags are listed.
    path = Path("/proc/cpuinfo")
    if not path.is_file():
        return {}

    fields: dict[str, str] = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key and key not in fields:
            fields[key] = value.strip()
        if not line.strip() and fields:
            break
    return fields


def _version_of(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"
