"""Cost beyond latency, measured in a fresh Python process per backend.

``measure_isolated`` runs ``python -m perfsuite.isolation`` once per backend, so the memory
that one backend allocates never shows up in another backend's figure. The child process
loads the model, builds the backend, times greedy generation on a real prompt and prints one
JSON line on stdout. It reports:

- peak resident memory, and the peak minus the resident memory before the model was loaded;
- model load, backend build and (for ONNX backends) export seconds;
- the size on disk of the model the backend runs (``model_size_bytes``);
- time to first token and per-token decode latency, timed around ``prefill`` and ``decode``.

Peak memory is read once at the end from the kernel's high-water mark, so no sampler thread
takes CPU time from the timed generations.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TextIO

import numpy as np
import psutil
import torch

from perfsuite.backends.base import Backend, BackendSettings
from perfsuite.backends.registry import BACKENDS
from perfsuite.errors import InvalidOptionError, PerfsuiteError
from perfsuite.models.source import load_model
from perfsuite.models.spec import ModelSpec
from perfsuite.prompts import make_prompt
from perfsuite.slowdown import Slowdown, apply_slowdown
from perfsuite.timing import median, percentile

logger = logging.getLogger(__name__)

DEFAULT_ROUNDS = 3
WARMUP_ROUNDS = 1
# Lines of the child's stderr quoted in an IsolationError.
STDERR_TAIL_LINES = 25
_PROC_STATUS = Path("/proc/self/status")


class IsolationError(PerfsuiteError, RuntimeError):
    """An isolated measurement failed: the child process exited with an error, timed out or printed no result."""


@dataclass(frozen=True)
class LatencySummary:
    """Latency of timed greedy generations of one prompt, after warmup."""

    time_to_first_token_s: float
    decode_token_p50_s: float
    decode_token_p90_s: float
    decode_steps: int
    generated_ids: tuple[int, ...]


@dataclass(frozen=True)
class IsolatedResult:
    """Costs of one backend beyond latency, measured in its own process.

    Memory is in bytes, times in seconds. ``peak_rss_growth_bytes`` is ``peak_rss_bytes`` minus
    ``rss_before_load_bytes``: the memory that loading the model, building the backend and
    generating added on top of the imported libraries. ``export_s`` and ``export_from_cache``
    are None for backends without an ONNX export. When the export came from the cache,
    ``export_s`` is the duration of the run that wrote the cache, not of this one. When it did
    not, the peak includes the export itself: 3.9 GiB against 1.2 GiB from the cache, for
    onnxruntime on synthetic:distilgpt2.
    ``decode_steps`` counts the timed decode steps behind the percentiles, and
    ``generated_ids`` are the greedy tokens of the last timed round.
    """

    backend_id: str
    model: str
    threads: int
    prompt_tokens: int
    new_tokens: int
    rounds: int
    rss_before_load_bytes: int
    peak_rss_bytes: int
    peak_rss_growth_bytes: int
    rss_at_end_bytes: int
    peak_rss_source: str
    model_load_s: float
    backend_build_s: float
    export_s: float | None
    export_from_cache: bool | None
    size_on_disk_bytes: int
    time_to_first_token_s: float
    decode_token_p50_s: float
    decode_token_p90_s: float
    decode_steps: int
    generated_ids: tuple[int, ...]

    @classmethod
    def from_record(cls, record: dict[str, object]) -> IsolatedResult:
        """Rebuild a result from ``to_record``'s dictionary; raise ValueError when fields are missing or unknown."""
        expected = {field.name for field in fields(cls)}
        if set(record) != expected:
            missing = sorted(expected - set(record))
            unknown = sorted(set(record) - expected)
            raise ValueError(f"isolated result record has missing fields {missing} and unknown fields {unknown}")

        values = dict(record)
        values["generated_ids"] = tuple(values["generated_ids"])
        return cls(**values)

    def to_record(self) -> dict[str, object]:
        """Return the result as a JSON-serializable dictionary."""
        record = asdict(self)
        record["generated_ids"] = list(self.generated_ids)
        return record


def measure_isolated(
    backend_id: str,
    model_spec: str,
    threads: int,
    cache_dir: Path,
    prompt_tokens: int,
    new_tokens: int,
    timeout_s: float,
    rounds: int = DEFAULT_ROUNDS,
) -> IsolatedResult:
    """Measure one backend in a fresh ``python -m perfsuite.isolation`` process and return its figures.

    Blocks until the child exits, and kills it after ``timeout_s``. Raises InvalidOptionError
    for an unknown backend id, a malformed model spec or counts out of range. Raises
    IsolationError when the child fails or times out. Its message names the backend and the
    exit code, and quotes the last lines of the child's stderr.
    """
    _check_request(backend_id, model_spec, threads, prompt_tokens, new_tokens, timeout_s, rounds)

    command = [
        sys.executable, "-m", "perfsuite.isolation",
        "--backend", backend_id,
        "--model", model_spec,
        "--threads", str(threads),
        "--cache-dir", str(cache_dir),
        "--prompt-tokens", str(prompt_tokens),
        "--new-tokens", str(new_tokens),
        "--rounds", str(rounds),
    ]

    logger.info("Measuring backend %s in a fresh process (timeout %g s)", backend_id, timeout_s)
    started = time.perf_counter()
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout_s, env=_child_environment(), check=False
        )
    except subprocess.TimeoutExpired as error:
        raise IsolationError(
            f"isolated run of backend {backend_id!r} timed out after {timeout_s:g} s and was killed; "
            f"raise timeout_s or measure fewer tokens. Last lines of its stderr:\n{_tail(error.stderr)}"
        ) from None

    logger.debug("Isolated run of %s took %.1f s; its stderr:\n%s", backend_id, time.perf_counter() - started, completed.stderr)
    if completed.returncode != 0:
        raise IsolationError(
            f"isolated run of backend {backend_id!r} failed with {_describe_exit(completed.returncode)}. "
            f"Last lines of its stderr:\n{_tail(completed.stderr)}"
        )

    return _parse_result(backend_id, completed.stdout, completed.stderr)


def _check_request(
    backend_id: str, model_spec: str, threads: int, prompt_tokens: int, new_tokens: int, timeout_s: float, rounds: int
) -> None:
    if backend_id not in BACKENDS:
        raise InvalidOptionError(f"unknown backend id {backend_id!r}; valid ids: {', '.join(BACKENDS)}")

    ModelSpec.parse(model_spec)

    if threads < 1:
        raise InvalidOptionError(f"thread count must be at least 1, got {threads}")
    if prompt_tokens < 1:
        raise InvalidOptionError(f"prompt_tokens must be at least 1, got {prompt_tokens}")
    if new_tokens < 2:
        raise InvalidOptionError(
            f"new_tokens must be at least 2 so that at least one decode step is timed, got {new_tokens}"
        )
    if rounds < 1:
        raise InvalidOptionError(f"rounds must be at least 1, got {rounds}")
    if timeout_s <= 0:
        raise InvalidOptionError(f"timeout_s must be positive, got {timeout_s}")


def _child_environment() -> dict[str, str]:
    # The child must import this same perfsuite, also when it is not installed but run from a checkout.
    package_root = str(Path(__file__).resolve().parent.parent)
    environment = dict(os.environ)
    inherited = environment.get("PYTHONPATH")
    environment["PYTHONPATH"] = package_root + (os.pathsep + inherited if inherited else "")
    return environment


def _describe_exit(returncode: int) -> str:
    if returncode < 0:
        return f"exit code {returncode} (killed by signal {-returncode}; 9 is often the out-of-memory killer)"
    return f"exit code {returncode}"


def _tail(stderr: str | bytes | None) -> str:
    # TimeoutExpired carries bytes even when run() was called with text=True.
    if isinstance(stderr, bytes):
        stderr = stderr.decode(errors="replace")
    lines = (stderr or "").rstrip().splitlines()
    if not lines:
        return "(no stderr output)"
    return "\n".join(lines[-STDERR_TAIL_LINES:])


def _parse_result(backend_id: str, stdout: str, stderr: str) -> IsolatedResult:
    lines = [line for line in stdout.splitlines() if line.strip()]
    if not lines:
        raise IsolationError(
            f"isolated run of backend {backend_id!r} exited with code 0 but printed no result line. "
            f"Last lines of its stderr:\n{_tail(stderr)}"
        )

    try:
        return IsolatedResult.from_record(json.loads(lines[-1]))
    except (ValueError, TypeError) as error:
        raise IsolationError(
            f"isolated run of backend {backend_id!r} printed an unreadable result line ({error}): {lines[-1][:200]!r}"
        ) from error


def measure_latency(backend: Backend, input_ids: np.ndarray, new_tokens: int, rounds: int) -> LatencySummary:
    """Run one warmup ``generate`` and ``rounds`` timed generations; return the median and p90 latencies.

    Time to first token is the median over rounds. The decode percentiles pool every decode
    step of every round. The child process and in-process comparisons both call this function.
    """
    if new_tokens < 2:
        raise ValueError(f"new_tokens must be at least 2 so that at least one decode step is timed, got {new_tokens}")

    for _ in range(WARMUP_ROUNDS):
        backend.generate(input_ids, new_tokens)

    # The same timestamps as the in-process benchmarks: Backend.generate_timed is the one timing mechanism.
    runs = [backend.generate_timed(input_ids, new_tokens) for _ in range(rounds)]
    timings = [timing for _, timing in runs]
    first_token_seconds = [timing.time_to_first_token_s for timing in timings]
    step_seconds = [seconds for timing in timings for seconds in timing.decode_steps_s]

    return LatencySummary(
        time_to_first_token_s=median(first_token_seconds),
        decode_token_p50_s=median(step_seconds),
        decode_token_p90_s=percentile(step_seconds, 0.9),
        decode_steps=len(step_seconds),
        generated_ids=tuple(int(token) for token in runs[-1][0][0]),
    )


def model_size_bytes(backend: Backend) -> int:
    """Return the size in bytes of the model that ``backend`` runs, as stored on disk.

    ONNX backends count the graph their session loads (``graph_path``, else
    ``export.graph_path``) plus the external data files it references. Other files in the
    export folder, such as the fp32 graph next to an int8 one, are not counted. Torch
    backends count what ``torch.save(model.state_dict())`` writes, with int8 weights in their
    packed form. Raises TypeError for a backend that has neither a graph nor a torch model.
    """
    graph_path = getattr(backend, "graph_path", None)
    export = getattr(backend, "export", None)
    if graph_path is None and export is not None:
        graph_path = export.graph_path
    if graph_path is not None:
        return onnx_graph_size_bytes(Path(graph_path))

    model = getattr(backend, "model", None)
    if isinstance(model, torch.nn.Module):
        return state_dict_size_bytes(model)

    raise TypeError(
        f"cannot size the model of backend {backend.backend_id!r}: it has no ONNX `graph_path` or "
        f"`export`, and no torch `model` attribute; give the backend class one of them"
    )


class _ByteCounter(io.RawIOBase):
    """A write-only stream that counts bytes and keeps none, so sizing a model does not copy it in memory."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:
        self.count += len(data)
        return len(data)


def state_dict_size_bytes(model: torch.nn.Module) -> int:
    """Return how many bytes ``torch.save(model.state_dict(), ...)`` writes; tied weights count once."""
    counter = _ByteCounter()
    torch.save(model.state_dict(), counter)
    return counter.count


def onnx_graph_size_bytes(graph_path: Path) -> int:
    """Return the size of an ONNX graph file plus the external data files its tensors reference."""
    import onnx

    graph_model = onnx.load(str(graph_path), load_external_data=False)
    data_files = {graph_path.parent / location for location in _external_locations(graph_model.graph)}
    return graph_path.stat().st_size + sum(path.stat().st_size for path in sorted(data_files))


def _external_locations(graph) -> set[str]:
    import onnx

    tensors = list(graph.initializer)
    locations = set()
    for node in graph.node:
        for attribute in node.attribute:
            tensors.append(attribute.t)
            tensors.extend(attribute.tensors)
            for subgraph in [attribute.g, *attribute.graphs]:
                locations |= _external_locations(subgraph)

    for tensor in tensors:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            entries = {entry.key: entry.value for entry in tensor.external_data}
            locations.add(entries["location"])

    return locations


def current_rss_bytes() -> int:
    """Return this process's resident set size in bytes."""
    return psutil.Process().memory_info().rss


def peak_rss_bytes() -> tuple[int, str]:
    """Return this process's peak resident set size in bytes and where it was read.

    On Linux this is ``VmHWM`` from ``/proc/self/status``, because ``ru_maxrss`` survives
    ``exec``: a child started by a parent that once held 600 MB reports at least 600 MB there.
    """
    if _PROC_STATUS.is_file():
        for line in _PROC_STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024, "VmHWM"

    # NOTE: outside Linux, ru_maxrss may include the parent's peak (see above); it is kilobytes
    # on most systems and bytes on macOS.
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1 if sys.platform == "darwin" else 1024
    return max_rss * scale, "ru_maxrss"


def _claim_stdout() -> TextIO:
    """Point file descriptor 1 at stderr and return a stream on the original stdout.

    Libraries print to stdout (the ONNX exporter prints its progress), and C extensions do so
    below Python's ``sys.stdout``, so only the returned stream can carry the result line.
    """
    sys.stdout.flush()
    result_fd = os.dup(1)
    os.dup2(2, 1)
    return os.fdopen(result_fd, "w")


def _measure_in_child(arguments: argparse.Namespace) -> IsolatedResult:
    backend_class = BACKENDS[arguments.backend]
    # Importing the runtime before the baseline keeps its shared libraries out of the growth
    # figure, as torch's are for every backend.
    backend_class.check_available()
    torch.set_num_threads(arguments.threads)
    rss_before_load = current_rss_bytes()

    started = time.perf_counter()
    loaded = load_model(ModelSpec.parse(arguments.model))
    model_load_s = time.perf_counter() - started

    # NOTE: every backend is built from the torch model, which stays loaded. So the onnxruntime
    # peak includes the fp32 torch weights next to the session's own, and the int8 peak includes
    # the fp32 model and the copy that quantize_dynamic_int8 converts.
    started = time.perf_counter()
    backend = backend_class(loaded, BackendSettings(threads=arguments.threads, cache_dir=arguments.cache_dir))
    backend_build_s = time.perf_counter() - started
    export = getattr(backend, "export", None)

    # The test-only slowdown applies here as it does to backends that the pytest session builds.
    slowdown = Slowdown.from_environment()
    if slowdown is not None and slowdown.backend_id == arguments.backend:
        apply_slowdown(backend, slowdown)

    prompt = make_prompt(loaded.tokenizer, arguments.prompt_tokens)
    latency = measure_latency(backend, prompt.as_batch(), arguments.new_tokens, arguments.rounds)

    # The peak is read before sizing the model, because sizing allocates.
    peak_rss, peak_rss_source = peak_rss_bytes()
    rss_at_end = current_rss_bytes()
    size_on_disk = model_size_bytes(backend)

    return IsolatedResult(
        backend_id=arguments.backend,
        model=arguments.model,
        threads=arguments.threads,
        prompt_tokens=arguments.prompt_tokens,
        new_tokens=arguments.new_tokens,
        rounds=arguments.rounds,
        rss_before_load_bytes=rss_before_load,
        peak_rss_bytes=peak_rss,
        peak_rss_growth_bytes=peak_rss - rss_before_load,
        rss_at_end_bytes=rss_at_end,
        peak_rss_source=peak_rss_source,
        model_load_s=model_load_s,
        backend_build_s=backend_build_s,
        export_s=getattr(export, "export_seconds", None),
        export_from_cache=getattr(export, "from_cache", None),
        size_on_disk_bytes=size_on_disk,
        time_to_first_token_s=latency.time_to_first_token_s,
        decode_token_p50_s=latency.decode_token_p50_s,
        decode_token_p90_s=latency.decode_token_p90_s,
        decode_steps=latency.decode_steps,
        generated_ids=latency.generated_ids,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m perfsuite.isolation",
        description="Measure one backend in this process and print the result as one JSON line on stdout.",
    )
    parser.add_argument("--backend", required=True, choices=sorted(BACKENDS), help="backend id")
    parser.add_argument("--model", required=True, help="model spec: hub id, directory or synthetic:NAME")
    parser.add_argument("--threads", required=True, type=int, help="intra-op threads for torch and onnxruntime")
    parser.add_argument("--cache-dir", required=True, type=Path, help="folder of cached ONNX exports")
    parser.add_argument("--prompt-tokens", required=True, type=int, help="prompt length in tokens")
    parser.add_argument("--new-tokens", required=True, type=int, help="tokens generated per timed round (at least 2)")
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help="timed generations after one warmup")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one isolated measurement; return 0 on success and 1 on a perfsuite error, logged to stderr.

    This is the child's entry point: it points file descriptor 1 at stderr for the rest of the process.
    """
    arguments = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    result_stream = _claim_stdout()

    try:
        result = _measure_in_child(arguments)
    except PerfsuiteError as error:
        logger.error("Isolated measurement of backend %s failed: %s", arguments.backend, error)
        return 1

    result_stream.write(json.dumps(result.to_record()) + "\n")
    result_stream.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
