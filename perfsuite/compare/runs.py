"""Load saved pytest-benchmark runs of perfsuite into typed records, pooling several files per side.

A side of a comparison is one or more JSON files saved by pytest-benchmark with per-round
data (``--benchmark-json``, or ``--benchmark-save``/``--benchmark-autosave`` together with
``--benchmark-save-data``). A folder stands for the ``*.json`` files directly inside it.
Benchmarks are matched by ``fullname``; when several files hold the same benchmark, their
rounds are concatenated in file-name order.

Problems that make a whole file useless raise RunFileError. A problem confined to one
benchmark or one metric is recorded next to the readable data, so the gate can report it.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perfsuite.compare.errors import RunFileError
from perfsuite.compare.stats import Direction

logger = logging.getLogger(__name__)

TIME_METRIC = "time_s"

SAVE_DATA_FIX = (
    "rerun pytest with --benchmark-save-data next to --benchmark-save or --benchmark-autosave, "
    "or save with --benchmark-json, which always includes them"
)

# perfsuite's own version is the code under test, so it may differ between base and head.
# Python's version is compared from machine_info instead.
_VERSION_KEYS_IGNORED = frozenset({"perfsuite", "python"})

# Facts of perfsuite's environment stamp that change timings. The stamp also contains the commit,
# which differs by design and is not compared.
COMPARED_ENVIRONMENT_KEYS = ("physical_cores", "kernel_flags", "quantized_engine")


@dataclass(frozen=True)
class Metric:
    """Per-round values of one measured quantity of one benchmark, kept apart per run (file)."""

    name: str
    unit: str
    direction: Direction
    runs: tuple[tuple[float, ...], ...]

    @property
    def values(self) -> tuple[float, ...]:
        """Every round of every run, in file order."""
        return tuple(value for run in self.runs for value in run)

    @property
    def run_sizes(self) -> tuple[int, ...]:
        return tuple(len(run) for run in self.runs)


@dataclass(frozen=True)
class BenchmarkSetup:
    """Inputs that a benchmark's figures depend on besides the code: the work, the model and the backend."""

    backend: str
    phase: str | None
    prompt_tokens: int | None
    new_tokens: int | None
    batch_size: int | None
    threads: int | None
    model_fingerprint: str | None
    backend_settings: Mapping[str, Any] = field(default_factory=dict)
    # A hash of the phase, sizes, threads and exact input token ids; absent in older runs.
    work_fingerprint: str | None = None


@dataclass(frozen=True)
class BenchmarkRecord:
    """One benchmark of one side: its setup and metrics, pooled over that side's files."""

    fullname: str
    name: str
    group: str | None
    setup: BenchmarkSetup
    metrics: Mapping[str, Metric]
    metric_problems: Mapping[str, str]
    sources: tuple[str, ...]


@dataclass(frozen=True)
class UnreadableBenchmark:
    """A benchmark entry that could not be read, with the reason and what to do."""

    fullname: str
    source: str
    reason: str


@dataclass(frozen=True)
class MachineIdentity:
    """The run-level facts that must match for timings to be comparable."""

    cpu_brand: str | None
    cpu_count: int | None
    system: str | None
    machine: str | None
    python_version: str | None
    library_versions: Mapping[str, str] = field(default_factory=dict)
    environment: Mapping[str, str] = field(default_factory=dict)

    def differences(self, other: MachineIdentity) -> list[tuple[str, str, str]]:
        """Return (field, this value, other value) for every field that differs."""
        found = []
        for label, mine, theirs in (
            ("CPU", self.cpu_brand, other.cpu_brand),
            ("CPU count", self.cpu_count, other.cpu_count),
            ("operating system", self.system, other.system),
            ("architecture", self.machine, other.machine),
            ("Python version", self.python_version, other.python_version),
        ):
            if mine != theirs:
                found.append((label, _show(mine), _show(theirs)))

        for library in sorted(set(self.library_versions) | set(other.library_versions)):
            mine = self.library_versions.get(library)
            theirs = other.library_versions.get(library)
            if mine != theirs:
                found.append((f"{library} version", _show(mine), _show(theirs)))

        for key in sorted(set(self.environment) | set(other.environment)):
            mine = self.environment.get(key)
            theirs = other.environment.get(key)
            if mine != theirs:
                found.append((key.replace("_", " "), _show(mine), _show(theirs)))
        return found


def _show(value: object) -> str:
    return "missing" if value is None else str(value)


@dataclass(frozen=True)
class SavedRun:
    """One side of a comparison: the benchmarks of one or more saved files."""

    sources: tuple[str, ...]
    machine: MachineIdentity
    benchmarks: Mapping[str, BenchmarkRecord]
    unreadable: tuple[UnreadableBenchmark, ...] = ()


def load_run(paths: Sequence[str | Path] | str | Path) -> SavedRun:
    """Load one side from files and folders and pool the benchmarks they contain.

    Raises RunFileError naming the file and the fix when a file cannot be used, when a
    folder contains no JSON file, or when the files come from different machines.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    files = _expand(paths)
    runs = [parse_run_document(_read_json(path), source=str(path)) for path in files]
    return pool_runs(runs)


def _expand(paths: Iterable[str | Path]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(child for child in path.glob("*.json") if child.is_file())
            if not found:
                raise RunFileError(f"{path}: folder contains no .json file; pass a saved run or a folder of them")
            files.extend(found)
        else:
            files.append(path)

    if not files:
        raise RunFileError("no saved run given; pass a pytest-benchmark JSON file or a folder of them")
    return files


def _read_json(path: Path) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RunFileError(f"{path}: file not found; check the path") from None
    except (OSError, UnicodeDecodeError) as error:
        raise RunFileError(f"{path}: cannot be read ({error}); check the path and its permissions") from None

    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise RunFileError(
            f"{path}: not valid JSON ({error.msg} at line {error.lineno}); "
            "pass a file written by pytest-benchmark (--benchmark-json or --benchmark-save)"
        ) from None


def parse_run_document(document: object, source: str) -> SavedRun:
    """Build a SavedRun from one pytest-benchmark JSON document already in memory.

    ``source`` names the document in messages (a file path, or "this run" inside pytest).
    """
    if not isinstance(document, dict) or not isinstance(document.get("benchmarks"), list):
        raise RunFileError(
            f"{source}: not a pytest-benchmark file (no 'benchmarks' list); "
            "pass a file written by pytest-benchmark (--benchmark-json or --benchmark-save)"
        )
    machine_info = document.get("machine_info")
    if not isinstance(machine_info, dict):
        raise RunFileError(f"{source}: not a pytest-benchmark file (no 'machine_info' object)")

    entries = document["benchmarks"]
    if not entries:
        raise RunFileError(
            f"{source}: contains no benchmark, so the run saved nothing; check whether its benchmarks were "
            "skipped, failed or run with --benchmark-disable"
        )
    _check_whole_file(entries, source)

    benchmarks: dict[str, BenchmarkRecord] = {}
    unreadable: list[UnreadableBenchmark] = []
    for index, entry in enumerate(entries):
        try:
            record = _parse_benchmark(entry, source)
        except _EntryError as error:
            fullname = entry.get("fullname") if isinstance(entry, dict) else None
            unreadable.append(UnreadableBenchmark(str(fullname or f"benchmark #{index + 1}"), source, str(error)))
            continue
        benchmarks = _add_pooled(benchmarks, record)

    return SavedRun(
        sources=(source,),
        machine=_machine_identity(machine_info, entries),
        benchmarks=benchmarks,
        unreadable=tuple(unreadable),
    )


def _check_whole_file(entries: list[Any], source: str) -> None:
    """Raise RunFileError when no entry has per-round data or none was measured by perfsuite."""
    dicts = [entry for entry in entries if isinstance(entry, dict)]
    stats = [entry.get("stats") for entry in dicts]
    if not any(isinstance(item, dict) and "data" in item for item in stats):
        raise RunFileError(f"{source}: saved without per-round data (no 'stats.data'); {SAVE_DATA_FIX}")

    extra = [entry.get("extra_info") for entry in dicts]
    if not any(isinstance(item, dict) and "backend" in item for item in extra):
        raise RunFileError(
            f"{source}: not a perfsuite run (no benchmark has extra_info.backend); "
            "compare runs saved by `pytest benchmarks/` of this project"
        )


class _EntryError(Exception):
    """A problem confined to one benchmark entry, recorded as an UnreadableBenchmark."""


def _parse_benchmark(entry: object, source: str) -> BenchmarkRecord:
    if not isinstance(entry, dict):
        raise _EntryError(f"entry is {type(entry).__name__}, not an object")
    fullname = entry.get("fullname")
    if not isinstance(fullname, str) or not fullname:
        raise _EntryError("entry has no 'fullname'")

    stats = entry.get("stats")
    if not isinstance(stats, dict) or "data" not in stats:
        raise _EntryError(f"saved without per-round data (no 'stats.data'); {SAVE_DATA_FIX}")
    extra_info = entry.get("extra_info")
    if not isinstance(extra_info, dict) or not isinstance(extra_info.get("backend"), str):
        raise _EntryError(
            "no extra_info.backend, so it was not measured by perfsuite's phase_benchmark fixture; "
            "only perfsuite benchmarks can be gated"
        )

    try:
        time_values = _finite_values(stats["data"])
    except ValueError as error:
        raise _EntryError(f"stats.data {error}") from None

    metrics = {TIME_METRIC: Metric(TIME_METRIC, "s", Direction.LOWER, (time_values,))}
    problems: dict[str, str] = {}
    _parse_extra_metrics(extra_info.get("metrics"), metrics, problems)

    return BenchmarkRecord(
        fullname=fullname,
        name=str(entry.get("name") or fullname),
        group=entry.get("group") if isinstance(entry.get("group"), str) else None,
        setup=_setup_from(extra_info),
        metrics=metrics,
        metric_problems=problems,
        sources=(source,),
    )


def _parse_extra_metrics(raw: object, metrics: dict[str, Metric], problems: dict[str, str]) -> None:
    """Add each valid entry of extra_info["metrics"] to ``metrics`` and the reason for each invalid one to ``problems``."""
    if raw is None:
        return
    if not isinstance(raw, dict):
        problems["metrics"] = f"extra_info.metrics is {type(raw).__name__}, expected an object of metrics"
        return

    for name, spec in raw.items():
        if name == TIME_METRIC:
            problems[name] = f"extra_info.metrics may not define {TIME_METRIC}, which is taken from stats.data"
            continue
        try:
            metrics[name] = _parse_metric(name, spec)
        except ValueError as error:
            problems[name] = f"extra_info.metrics.{name}: {error}"


def _parse_metric(name: str, spec: object) -> Metric:
    if not isinstance(spec, dict):
        raise ValueError(f"expected an object with unit, direction and values, got {type(spec).__name__}")

    unit = spec.get("unit")
    if not isinstance(unit, str):
        raise ValueError(f"unit must be a string, got {unit!r}")

    direction_text = spec.get("direction")
    try:
        direction = Direction(direction_text)
    except ValueError:
        raise ValueError(f"direction must be 'lower' or 'higher', got {direction_text!r}") from None

    values = spec.get("values")
    # A metric measured once per benchmark (peak memory, say) may be a bare number.
    if isinstance(values, (int, float)) and not isinstance(values, bool):
        values = [values]
    return Metric(name, unit, direction, (_finite_values(values),))


def _finite_values(values: object) -> tuple[float, ...]:
    if not isinstance(values, list):
        raise ValueError(f"must be a list of numbers, got {type(values).__name__}")
    result = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"contains {value!r}; every value must be a finite number")
        result.append(float(value))
    return tuple(result)


def _setup_from(extra_info: Mapping[str, Any]) -> BenchmarkSetup:
    model = extra_info.get("model")
    fingerprint = model.get("fingerprint") if isinstance(model, dict) else None
    settings = extra_info.get("backend_settings")
    work_fingerprint = extra_info.get("work_fingerprint")
    return BenchmarkSetup(
        backend=extra_info["backend"],
        phase=extra_info.get("phase"),
        prompt_tokens=extra_info.get("prompt_tokens"),
        new_tokens=extra_info.get("new_tokens"),
        batch_size=extra_info.get("batch_size"),
        threads=extra_info.get("threads"),
        model_fingerprint=fingerprint if isinstance(fingerprint, str) else None,
        backend_settings=dict(settings) if isinstance(settings, dict) else {},
        work_fingerprint=work_fingerprint if isinstance(work_fingerprint, str) else None,
    )


def _machine_identity(machine_info: Mapping[str, Any], entries: list[Any]) -> MachineIdentity:
    cpu = machine_info.get("cpu") if isinstance(machine_info.get("cpu"), dict) else {}
    environment = _environment_stamp(machine_info, entries)
    return MachineIdentity(
        cpu_brand=cpu.get("brand_raw"),
        cpu_count=cpu.get("count"),
        system=machine_info.get("system"),
        machine=machine_info.get("machine"),
        python_version=machine_info.get("python_version"),
        library_versions=_library_versions(environment),
        environment={key: _text(environment[key]) for key in COMPARED_ENVIRONMENT_KEYS if key in environment},
    )


def _environment_stamp(machine_info: Mapping[str, Any], entries: list[Any]) -> Mapping[str, Any]:
    """Return perfsuite's environment stamp: from machine_info.perfsuite, else from the first benchmark.

    perfsuite has saved library versions at ``perfsuite.versions`` and, later, inside
    ``perfsuite.environment``. Both layouts are read.
    """
    candidates = []
    stamp = machine_info.get("perfsuite")
    if isinstance(stamp, dict):
        candidates.extend([stamp.get("environment"), stamp])
    for entry in entries:
        extra = entry.get("extra_info") if isinstance(entry, dict) else None
        if isinstance(extra, dict):
            candidates.extend([extra.get("environment"), extra])
            break

    for candidate in candidates:
        if isinstance(candidate, dict) and isinstance(candidate.get("versions"), dict):
            return candidate
    return {}


def _library_versions(environment: Mapping[str, Any]) -> dict[str, str]:
    versions = environment.get("versions", {})
    return {str(name): str(version) for name, version in versions.items() if name not in _VERSION_KEYS_IGNORED}


def _text(value: object) -> str:
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return str(value)


def pool_runs(runs: Sequence[SavedRun]) -> SavedRun:
    """Merge the runs of one side: benchmarks by fullname, rounds concatenated in order.

    Raises RunFileError when the runs come from different machines or library versions,
    or when one benchmark was set up differently in two files.
    """
    if not runs:
        raise RunFileError("no saved run given; pass a pytest-benchmark JSON file or a folder of them")

    first = runs[0]
    benchmarks = dict(first.benchmarks)
    unreadable = list(first.unreadable)
    for run in runs[1:]:
        differences = first.machine.differences(run.machine)
        if differences:
            listed = "; ".join(f"{label}: {mine} vs {theirs}" for label, mine, theirs in differences)
            raise RunFileError(
                f"{run.sources[0]} and {first.sources[0]} come from different machines or versions ({listed}); "
                "pool only runs of one setup per side"
            )
        for record in run.benchmarks.values():
            benchmarks = _add_pooled(benchmarks, record)
        unreadable.extend(run.unreadable)

    sources = tuple(source for run in runs for source in run.sources)
    return SavedRun(sources=sources, machine=first.machine, benchmarks=benchmarks, unreadable=tuple(unreadable))


def _add_pooled(benchmarks: dict[str, BenchmarkRecord], record: BenchmarkRecord) -> dict[str, BenchmarkRecord]:
    existing = benchmarks.get(record.fullname)
    if existing is None:
        benchmarks[record.fullname] = record
        return benchmarks

    if existing.setup != record.setup:
        raise RunFileError(
            f"{record.sources[0]}: benchmark {record.fullname} was set up differently in {existing.sources[0]} "
            "(work, model, threads or backend settings); pool only runs of one setup per side"
        )
    benchmarks[record.fullname] = BenchmarkRecord(
        fullname=existing.fullname,
        name=existing.name,
        group=existing.group,
        setup=existing.setup,
        metrics=_merge_metrics(existing, record),
        metric_problems={**existing.metric_problems, **record.metric_problems},
        sources=existing.sources + record.sources,
    )
    return benchmarks


def _merge_metrics(existing: BenchmarkRecord, added: BenchmarkRecord) -> dict[str, Metric]:
    merged = dict(existing.metrics)
    for name, metric in added.metrics.items():
        previous = merged.get(name)
        if previous is None:
            merged[name] = metric
            continue
        if (previous.unit, previous.direction) != (metric.unit, metric.direction):
            raise RunFileError(
                f"{added.sources[0]}: metric {name} of {added.fullname} has unit {metric.unit!r} and direction "
                f"{metric.direction.value!r}, but {previous.unit!r} and {previous.direction.value!r} in "
                f"{existing.sources[0]}; pool only runs of one perfsuite version per side"
            )
        merged[name] = Metric(name, metric.unit, metric.direction, previous.runs + metric.runs)
    return merged
