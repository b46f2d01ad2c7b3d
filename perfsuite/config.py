"""Typed run configuration: what the suite measures, validated once when pytest parses options."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import psutil

from perfsuite.errors import InvalidOptionError
from perfsuite.models.spec import ModelSpec


@dataclass(frozen=True)
class Profile:
    """How much work a run does: rounds per phase and the default value of each sweep."""

    name: str
    prompt_lengths: tuple[int, ...]
    generate_prompt_lengths: tuple[int, ...]
    new_tokens: tuple[int, ...]
    batch_sizes: tuple[int, ...]
    tokenize_rounds: int
    first_token_rounds: int
    generate_rounds: int
    warmup_rounds: int
    quality_steps: int
    perplexity_tokens: int
    isolation_rounds: int


FULL_PROFILE = Profile(
    name="full",
    prompt_lengths=(16, 128, 512),
    generate_prompt_lengths=(128,),
    new_tokens=(64,),
    batch_sizes=(1, 4),
    tokenize_rounds=200,
    first_token_rounds=10,
    generate_rounds=5,
    warmup_rounds=1,
    quality_steps=32,
    perplexity_tokens=256,
    isolation_rounds=3,
)

QUICK_PROFILE = Profile(
    name="quick",
    prompt_lengths=(16,),
    generate_prompt_lengths=(16,),
    new_tokens=(8,),
    batch_sizes=(1,),
    tokenize_rounds=20,
    first_token_rounds=3,
    generate_rounds=3,
    warmup_rounds=1,
    quality_steps=8,
    perplexity_tokens=64,
    isolation_rounds=1,
)


@dataclass(frozen=True)
class Sweeps:
    """The values each parametrized dimension takes in this run."""

    prompt_lengths: tuple[int, ...]
    generate_prompt_lengths: tuple[int, ...]
    new_tokens: tuple[int, ...]
    batch_sizes: tuple[int, ...]
    thread_counts: tuple[int, ...]

    def __post_init__(self) -> None:
        for name in ("prompt_lengths", "generate_prompt_lengths", "new_tokens", "batch_sizes", "thread_counts"):
            values = getattr(self, name)
            if not values or min(values) < 1:
                raise InvalidOptionError(f"{name.replace('_', ' ')} must be whole numbers of 1 or more, got {values}")


@dataclass(frozen=True)
class SuiteConfig:
    """Everything a benchmark run needs to know, built from pytest options and environment variables."""

    model: ModelSpec
    backends: tuple[str, ...]
    profile: Profile
    sweeps: Sweeps
    cache_dir: Path
    measure_extras: bool = True

    def __post_init__(self) -> None:
        if not self.backends:
            raise InvalidOptionError("no backend selected; pass at least one backend id")

    @property
    def max_threads(self) -> int:
        return max(self.sweeps.thread_counts)


def physical_cores() -> int:
    """Return the number of physical cores, or the logical count where it cannot be read."""
    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


def default_thread_counts() -> tuple[int, ...]:
    """Return 1 thread and all physical cores: the two settings CPU servers usually choose between."""
    return tuple(sorted({1, physical_cores()}))


def default_cache_dir() -> Path:
    """Return ``$PERFSUITE_CACHE_DIR``, else ``$XDG_CACHE_HOME/perfsuite``, else ``~/.cache/perfsuite``."""
    if "PERFSUITE_CACHE_DIR" in os.environ:
        return Path(os.environ["PERFSUITE_CACHE_DIR"]).expanduser()

    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "perfsuite"


def parse_int_list(text: str, option: str) -> tuple[int, ...]:
    """Parse ``"1,4"`` into ``(1, 4)``; raise InvalidOptionError naming the option and value otherwise."""
    values = []
    for part in text.split(","):
        part = part.strip()
        try:
            value = int(part)
        except ValueError:
            raise InvalidOptionError(
                f"invalid {option} value {text!r}: {part!r} is not a whole number; pass a list such as 1,4"
            ) from None
        if value < 1:
            raise InvalidOptionError(f"invalid {option} value {text!r}: {value} is below 1")
        values.append(value)
    return tuple(dict.fromkeys(values))
