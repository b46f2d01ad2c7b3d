"""Per-run state: the model, prompts and backends, each built at most once per pytest run and thread count."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import torch

from perfsuite.backends.base import Backend, BackendSettings
from perfsuite.backends.registry import BACKENDS, REFERENCE_BACKEND
from perfsuite.bandwidth import measure_memory_bandwidth
from perfsuite.environment import collect_environment
from perfsuite.config import SuiteConfig
from perfsuite.errors import BackendUnavailableError, PerfsuiteError
from perfsuite.isolation import IsolationError, measure_isolated
from perfsuite.quality import compute_quality
from perfsuite.models.source import LoadedModel, load_model
from perfsuite.prompts import Prompt, make_prompt
from perfsuite.slowdown import Slowdown, apply_slowdown
from perfsuite.timing import measure_clock_overhead

logger = logging.getLogger(__name__)

# The timing code may add at most this share of the fastest measured call.
OVERHEAD_LIMIT = 0.01
ISOLATION_TIMEOUT_S = 900.0
# Quality is compared on a short and a medium real prompt.
QUALITY_PROMPT_LENGTHS = (16, 128)


@dataclass(frozen=True)
class BenchmarkResult:
    """One finished benchmark, kept for the terminal summary."""

    backend_id: str
    work: object
    extra_info: dict[str, object]


def harness_overhead_notes(results: list[BenchmarkResult], clock_cost_s: float | None = None) -> list[str]:
    """Return a line with the timing code's cost per measured call as a share of the fastest benchmark.

    pytest-benchmark reads the clock twice per round; generation reads it once more per token.
    """
    medians = [(result, result.extra_info.get("median_s")) for result in results]
    medians = [(result, median_s) for result, median_s in medians if isinstance(median_s, float) and median_s > 0]
    if not medians:
        return []

    cost = measure_clock_overhead() if clock_cost_s is None else clock_cost_s
    shares = []
    for result, median_s in medians:
        reads = 2 + (result.extra_info["new_tokens"] + 1 if result.extra_info["phase"] == "generate" else 0)
        shares.append((reads * cost / median_s, result, median_s))

    share, result, median_s = max(shares, key=lambda entry: entry[0])
    line = (
        f"Harness overhead: {cost * 1e9:.0f} ns per clock read; at most {share:.3%} of a measured call "
        f"({result.extra_info['phase']} on {result.backend_id}, median {median_s * 1e3:.3f} ms)"
    )
    if share >= OVERHEAD_LIMIT:
        line = "NOTE: " + line + f", above the {OVERHEAD_LIMIT:.0%} limit; time longer work per round."
    return [line]


class PerfSession:
    """Builds the model and backends lazily and caches them, failures included.

    A backend that fails to build stores its error, so each of its benchmarks fails with
    the same cause and the other backends keep running.
    """

    def __init__(self, config: SuiteConfig) -> None:
        self.config = config
        self._model: LoadedModel | None = None
        self._backends: dict[tuple[str, int], Backend | PerfsuiteError] = {}
        self._prompts: dict[int, Prompt] = {}
        self.results: list[BenchmarkResult] = []
        self._bandwidth: float | None = None
        self._weight_bytes: dict[str, int | None] = {}
        self._extras: dict[str, dict[str, object]] = {}

    def model(self) -> LoadedModel:
        if self._model is None:
            torch.set_num_threads(self.config.max_threads)
            self._model = load_model(self.config.model)
            logger.debug("Model ready: %s", self._model.info.describe())
        return self._model

    def prompt(self, n_tokens: int) -> Prompt:
        if n_tokens not in self._prompts:
            self._prompts[n_tokens] = make_prompt(self.model().tokenizer, n_tokens)
        return self._prompts[n_tokens]

    def backend(self, backend_id: str, threads: int) -> Backend:
        """Return the backend built for ``threads`` intra-op threads, raising its stored build error when building failed."""
        key = (backend_id, threads)
        if key not in self._backends:
            self._backends[key] = self._build(backend_id, threads)

        built = self._backends[key]
        if isinstance(built, PerfsuiteError):
            raise built
        return built

    def run_record(self) -> dict[str, object]:
        """Return what every saved benchmark records about the model and the environment."""
        record: dict[str, object] = {"environment": collect_environment().to_record()}
        if self._model is not None:
            record["model"] = self._model.info.to_record()
        return record

    def record_result(self, work: object, backend: Backend, extra_info: dict[str, object]) -> None:
        self.results.append(BenchmarkResult(backend.backend_id, work, extra_info))

    def backend_extras(self, backend_id: str) -> dict[str, object]:
        """Return the backend's figures measured apart from latency: memory, load time, size, quality."""
        return self._extras.get(backend_id, {})

    def summary_notes(self) -> list[str]:
        """Return the lines under the summary table: bandwidth, harness overhead, model caveats."""
        notes = []
        if self._bandwidth is not None:
            notes.append(
                f"Memory copy bandwidth {self._bandwidth / 1e9:.1f} GB/s; 'bw bound' is the decode step's "
                f"weight-read time at that bandwidth over the measured p50 (100% = at the hardware limit)."
            )
        notes += harness_overhead_notes(self.results)
        notes += self._export_notes()
        if self._model is not None and self._model.info.synthetic:
            notes.append(
                "Model weights are SYNTHETIC (seeded): latency stands for the real model's, "
                "generated text and perplexity have no meaning."
            )
        return notes

    def _export_notes(self) -> list[str]:
        """Return one line per ONNX backend with the export time of the run that first exported the model."""
        notes = []
        for backend_id, extras in self._extras.items():
            isolated = extras.get("isolated") or {}
            if isolated.get("export_s") is not None:
                cached = " (cached since)" if isolated.get("export_from_cache") else ""
                notes.append(f"{backend_id}: ONNX export took {isolated['export_s']:.1f} s on its first run{cached}.")
        return notes

    def memory_bandwidth(self) -> float:
        """Return the machine's copy bandwidth in bytes per second, measured once per run."""
        if self._bandwidth is None:
            self._bandwidth = measure_memory_bandwidth()
        return self._bandwidth

    def weight_bytes_per_token(self, backend: Backend) -> int | None:
        if backend.backend_id not in self._weight_bytes:
            self._weight_bytes[backend.backend_id] = backend.weight_bytes_per_token()
        return self._weight_bytes[backend.backend_id]

    def _build(self, backend_id: str, threads: int) -> Backend | PerfsuiteError:
        backend_class = BACKENDS[backend_id]
        settings = BackendSettings(threads=threads, cache_dir=self.config.cache_dir)
        loaded = self.model()

        started = time.perf_counter()
        logger.info("Building backend %s with %d threads", backend_id, threads)
        try:
            backend_class.check_available()
            backend = backend_class(loaded, settings)
        except BackendUnavailableError as error:
            logger.error("Backend %s is unavailable: %s", backend_id, error)
            return error

        slowdown = Slowdown.from_environment()
        if slowdown is not None and slowdown.backend_id == backend_id:
            apply_slowdown(backend, slowdown)

        logger.info("Built backend %s in %.1f s", backend_id, time.perf_counter() - started)

        # Measured here, between timings, so nothing of this runs beside a timed round.
        self.memory_bandwidth()
        if self.config.measure_extras and backend_id not in self._extras:
            self._extras[backend_id] = self._measure_extras(backend)
        return backend

    def _measure_extras(self, backend: Backend) -> dict[str, object]:
        """Measure what latency runs cannot show: memory, load time and size in a fresh process, and quality."""
        profile = self.config.profile
        extras: dict[str, object] = {}

        try:
            isolated = measure_isolated(
                backend.backend_id,
                self.resolved_model_spec(),
                threads=self.config.max_threads,
                cache_dir=self.config.cache_dir,
                prompt_tokens=min(self.config.sweeps.generate_prompt_lengths),
                new_tokens=max(2, min(self.config.sweeps.new_tokens)),
                timeout_s=ISOLATION_TIMEOUT_S,
                rounds=profile.isolation_rounds,
            )
        except IsolationError as error:
            logger.error("Memory and load time of %s were not measured: %s", backend.backend_id, error)
            extras["isolation_error"] = str(error)
        else:
            extras["isolated"] = isolated.to_record()
            extras["peak_rss_bytes"] = isolated.peak_rss_bytes
            extras["load_s"] = isolated.model_load_s + isolated.backend_build_s
            extras["size_on_disk_bytes"] = isolated.size_on_disk_bytes

        reference = BACKENDS[REFERENCE_BACKEND](self.model(), backend.settings)
        prompts = [self.prompt(length) for length in QUALITY_PROMPT_LENGTHS]
        quality = compute_quality(backend, reference, prompts, profile.quality_steps, profile.perplexity_tokens)
        extras["quality"] = quality.to_record()
        extras["max_abs_logit_diff"] = quality.max_abs_logit_diff
        extras["greedy_agreement"] = quality.greedy_agreement
        extras["perplexity"] = quality.perplexity
        extras["perplexity_label"] = "synthetic" if quality.perplexity is None else None
        return extras

    def resolved_model_spec(self) -> str:
        """Return a spec that loads the same model without another hub lookup or fallback."""
        info = self.model().info
        if info.synthetic:
            return f"synthetic:{info.name}"
        return info.name
