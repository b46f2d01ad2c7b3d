"""Run one phase of one backend under pytest-benchmark and record what the figure covers."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from perfsuite.backends.base import Backend
from perfsuite.config import Profile
from perfsuite.environment import library_versions


class Phase(enum.Enum):
    """A measured phase; the value is the group label in pytest-benchmark's table."""

    TOKENIZE = "tokenize"
    FIRST_TOKEN = "first-token"
    GENERATE = "generate"


@dataclass(frozen=True)
class Work:
    """The work one timed round does: equal for every backend in a group."""

    phase: Phase
    prompt_tokens: int
    new_tokens: int = 0
    batch_size: int = 1

    def group(self) -> str:
        """Return the pytest-benchmark group, so backends doing the same work sit side by side."""
        label = f"{self.phase.value}: prompt {self.prompt_tokens}"
        if self.new_tokens:
            label += f", new {self.new_tokens}"
        if self.batch_size != 1:
            label += f", batch {self.batch_size}"
        return label

    def counted_tokens(self) -> tuple[int, str]:
        """Return the tokens a round produces or consumes, and which ones, for tokens per second."""
        if self.phase is Phase.GENERATE:
            return self.new_tokens * self.batch_size, "new tokens, prefill included"
        return self.prompt_tokens * self.batch_size, "prompt tokens"


def rounds_for(profile: Profile, phase: Phase) -> int:
    """Return the profile's timed round count for ``phase``."""
    return {
        Phase.TOKENIZE: profile.tokenize_rounds,
        Phase.FIRST_TOKEN: profile.first_token_rounds,
        Phase.GENERATE: profile.generate_rounds,
    }[phase]


class PhaseBenchmark:
    """Wraps pytest-benchmark's ``benchmark`` fixture for one backend.

    Every call runs a fixed number of rounds of one iteration each, after the profile's
    warmup rounds (excluded from the statistics), and fills ``extra_info``.
    """

    def __init__(self, benchmark: Any, backend: Backend, profile: Profile, run_record: dict[str, object]) -> None:
        self.benchmark = benchmark
        self.backend = backend
        self.profile = profile
        self.run_record = run_record

    def __call__(self, work: Work, function: Callable[..., Any], *args: Any) -> Any:
        """Time ``function(*args)`` as ``work`` and return its last result."""
        rounds = rounds_for(self.profile, work.phase)
        self.benchmark.group = work.group()

        result = self.benchmark.pedantic(
            function, args=args, rounds=rounds, warmup_rounds=self.profile.warmup_rounds, iterations=1
        )

        self.benchmark.extra_info.update(self._extra_info(work, rounds))
        return result

    def _extra_info(self, work: Work, rounds: int) -> dict[str, object]:
        tokens, counted = work.counted_tokens()
        info: dict[str, object] = {
            "backend": self.backend.backend_id,
            "phase": work.phase.value,
            "prompt_tokens": work.prompt_tokens,
            "new_tokens": work.new_tokens,
            "batch_size": work.batch_size,
            "rounds": rounds,
            "warmup_rounds": self.profile.warmup_rounds,
            "profile": self.profile.name,
            "tokens_counted": counted,
            "backend_settings": self.backend.details(),
            "versions": library_versions(),
            **self.run_record,
        }

        median = self._median_seconds()
        if median:
            info["tokens_per_second"] = round(tokens / median, 2)
        return info

    def _median_seconds(self) -> float | None:
        # With --benchmark-disable, pytest-benchmark runs the function once and keeps no statistics.
        stats = getattr(self.benchmark, "stats", None)
        if stats is None:
            return None
        return stats.stats.median
