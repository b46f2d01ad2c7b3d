"""Run one phase of one backend under pytest-benchmark and record what the figure covers."""

from __future__ import annotations

import enum
import hashlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from perfsuite.backends.base import Backend
from perfsuite.bandwidth import DecodeBound
from perfsuite.config import Profile

if TYPE_CHECKING:
    from perfsuite.session import PerfSession
from perfsuite.stability import StabilityLimits, UnstableResultWarning, perf_counter_resolution, stability_problems
from perfsuite.timing import GenerationTiming, median, percentile


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
    threads: int
    new_tokens: int = 0
    batch_size: int = 1

    def group(self) -> str:
        """Return the pytest-benchmark group, so backends doing the same work sit side by side."""
        label = f"{self.phase.value}: prompt {self.prompt_tokens}"
        if self.new_tokens:
            label += f", new {self.new_tokens}"
        if self.phase is not Phase.TOKENIZE:
            label += f", batch {self.batch_size}, threads {self.threads}"
        return label

    def fingerprint(self, input_ids: np.ndarray) -> str:
        """Return a short hash of the phase, sizes and exact input token ids, equal only for equal work."""
        digest = hashlib.sha256(f"{self.phase.value}|{self.new_tokens}|{self.batch_size}|{self.threads}".encode())
        digest.update(np.ascontiguousarray(input_ids, dtype=np.int64).tobytes())
        return digest.hexdigest()[:16]

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


def metric(unit: str, direction: str, values: list[float]) -> dict[str, object]:
    """Return one entry of ``extra_info["metrics"]``: per-round values and which direction is better."""
    return {"unit": unit, "direction": direction, "values": values}


def generation_metrics(timings: list[GenerationTiming], batch_size: int) -> dict[str, object]:
    """Return per-round time to first token, per-token decode latency and decode throughput."""
    metrics: dict[str, object] = {
        "time_to_first_token_s": metric("s", "lower", [timing.time_to_first_token_s for timing in timings]),
    }

    if any(timing.decode_steps_s for timing in timings):
        metrics["decode_token_s"] = metric("s", "lower", [median(timing.decode_steps_s) for timing in timings])
        metrics["decode_tokens_per_second"] = metric(
            "tokens/s", "higher", [batch_size * timing.decode_tokens_per_second for timing in timings]
        )
    return metrics


def decode_percentiles(timings: list[GenerationTiming]) -> dict[str, float] | None:
    """Return p50/p90/p99 of per-token decode latency over every step of every timed round."""
    steps = [step for timing in timings for step in timing.decode_steps_s]
    if not steps:
        return None
    return {name: percentile(steps, fraction) for name, fraction in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))}


def _input_array(value: Any) -> np.ndarray:
    """Return the token ids of a phase's first argument: an id array, or text encoded as UTF-8 bytes."""
    if isinstance(value, str):
        return np.frombuffer(value.encode(), dtype=np.uint8).astype(np.int64)
    return np.asarray(value)


class PhaseBenchmark:
    """Wraps pytest-benchmark's ``benchmark`` fixture for one backend.

    Every call runs the profile's warmup rounds, which are excluded from the statistics
    and counted in extra_info, then a fixed number of rounds of one iteration each, all
    doing the same work. It fills ``extra_info`` and warns when the rounds look unstable.
    """

    def __init__(self, benchmark: Any, backend: Backend, session: PerfSession) -> None:
        self.benchmark = benchmark
        self.backend = backend
        self.session = session
        self.profile = session.config.profile

    def __call__(self, work: Work, function: Callable[..., Any], *args: Any) -> Any:
        """Time ``function(*args)`` as ``work`` and return its last result."""
        result = self._run(work, function, args)
        extra_info = self._extra_info(work)
        extra_info["work_fingerprint"] = work.fingerprint(_input_array(args[0]))
        self._finish(work, extra_info)
        return result

    def generate(self, work: Work, input_ids: np.ndarray) -> np.ndarray:
        """Time ``backend.generate`` as ``work`` and record its phases from the same runs."""
        timings: list[GenerationTiming] = []

        def generate_once(ids: np.ndarray, new_tokens: int) -> np.ndarray:
            tokens, timing = self.backend.generate_timed(ids, new_tokens)
            timings.append(timing)
            return tokens

        result = self._run(work, generate_once, (input_ids, work.new_tokens))

        timed = timings[self.profile.warmup_rounds:]
        extra_info = self._extra_info(work)
        extra_info["work_fingerprint"] = work.fingerprint(input_ids)
        extra_info["metrics"] = generation_metrics(timed, work.batch_size)
        peak = self.session.backend_extras(self.backend.backend_id).get("peak_rss_bytes")
        if peak is not None:
            # One isolated measurement per run: pooled runs give the gate several values.
            extra_info["metrics"]["peak_rss_bytes"] = metric("bytes", "lower", [float(peak)])
        extra_info["decode_token_percentiles_s"] = decode_percentiles(timed)
        extra_info["decode_bound"] = self._decode_bound(extra_info["decode_token_percentiles_s"], work)
        self._finish(work, extra_info)
        return result

    def _decode_bound(self, percentiles: dict[str, float] | None, work: Work) -> dict[str, float] | None:
        weight_bytes = self.session.weight_bytes_per_token(self.backend)
        if percentiles is None or weight_bytes is None:
            return None

        bound = DecodeBound(weight_bytes, self.session.memory_bandwidth(), percentiles["p50"])
        return {
            "weight_bytes": weight_bytes,
            "bandwidth_bytes_per_s": bound.bandwidth_bytes_per_s,
            "bound_step_s": bound.bound_step_s,
            "fraction_of_bound": bound.fraction_of_bound,
        }

    def _finish(self, work: Work, extra_info: dict[str, object]) -> None:
        self._warn_if_unstable(extra_info)
        self.benchmark.extra_info.update(extra_info)
        self.session.record_result(work, self.backend, extra_info)

    def _run(self, work: Work, function: Callable[..., Any], args: tuple) -> Any:
        self.benchmark.group = work.group()
        self.backend.activate()
        return self.benchmark.pedantic(
            function,
            args=args,
            rounds=rounds_for(self.profile, work.phase),
            warmup_rounds=self.profile.warmup_rounds,
            iterations=1,
        )

    def _extra_info(self, work: Work) -> dict[str, object]:
        tokens, counted = work.counted_tokens()
        info: dict[str, object] = {
            "backend": self.backend.backend_id,
            "phase": work.phase.value,
            "prompt_tokens": work.prompt_tokens,
            "new_tokens": work.new_tokens,
            "batch_size": work.batch_size,
            "threads": work.threads,
            "rounds": rounds_for(self.profile, work.phase),
            "warmup_rounds": self.profile.warmup_rounds,
            "profile": self.profile.name,
            "tokens_counted": counted,
            "backend_settings": self.backend.details(),
            **self.session.run_record(),
        }

        extras = self.session.backend_extras(self.backend.backend_id)
        for key in ("isolated", "quality", "isolation_error"):
            if key in extras:
                info[key] = extras[key]

        rounds = self._rounds_s()
        if rounds:
            info["median_s"] = median(rounds)
            info["tokens_per_second"] = tokens / median(rounds)
        return info

    def _rounds_s(self) -> list[float]:
        # With --benchmark-disable, pytest-benchmark runs the function once and keeps no statistics.
        stats = getattr(self.benchmark, "stats", None)
        if stats is None:
            return []
        return list(stats.stats.data)

    def _warn_if_unstable(self, extra_info: dict[str, object]) -> None:
        limits = StabilityLimits(timer_resolution_s=perf_counter_resolution())
        problems = stability_problems(self._rounds_s(), limits)
        extra_info["stability_problems"] = problems
        for problem in problems:
            warnings.warn(UnstableResultWarning(f"{self.benchmark.name}: {problem}"), stacklevel=3)
