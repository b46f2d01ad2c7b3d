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
    """How much work a run does: prompt lengths, new tokens and rounds per phase."""

    name: str
    prompt_lengths: tuple[int, ...]
    new_tokens: int
    tokenize_rounds: int
    first_token_rounds: int
    generate_rounds: int
    warmup_rounds: int


FULL_PROFILE = Profile(
    name="full",
    prompt_lengths=(16, 128, 512),
    new_tokens=64,
    tokenize_rounds=200,
    first_token_rounds=10,
    generate_rounds=5,
    warmup_rounds=1,
)

QUICK_PROFILE = Profile(
    name="quick",
    prompt_lengths=(16, 128),
    new_tokens=8,
    tokenize_rounds=20,
    first_token_rounds=3,
    generate_rounds=3,
    warmup_rounds=1,
)


@dataclass(frozen=True)
class SuiteConfig:
    """Everything a benchmark run needs to know, built from pytest options and environment variables."""

    model: ModelSpec
    backends: tuple[str, ...]
    profile: Profile
    threads: int
    cache_dir: Path

    def __post_init__(self) -> None:
        if self.threads < 1:
            raise InvalidOptionError(f"thread count must be at least 1, got {self.threads}")
        if not self.backends:
            raise InvalidOptionError("no backend selected; pass at least one backend id")


def default_threads() -> int:
    """Return the number of physical cores, the thread count CPU inference servers usually use."""
    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


def default_cache_dir() -> Path:
    """Return ``$PERFSUITE_CACHE_DIR``, else ``$XDG_CACHE_HOME/perfsuite``, else ``~/.cache/perfsuite``."""
    if "PERFSUITE_CACHE_DIR" in os.environ:
        return Path(os.environ["PERFSUITE_CACHE_DIR"]).expanduser()

    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "perfsuite"


def parse_threads(text: str | int) -> int:
    """Parse a positive thread count; raise InvalidOptionError naming the value otherwise."""
    try:
        threads = int(text)
    except ValueError:
        raise InvalidOptionError(f"invalid thread count {text!r}; pass a whole number such as 2") from None
    if threads < 1:
        raise InvalidOptionError(f"invalid thread count {threads}; pass 1 or more")
    return threads
