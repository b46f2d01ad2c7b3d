"""Measure the regression gate's false-alarm and detection rates on this machine.

The script alternates clean (A) and slowed (B) benchmark runs, each in a fresh pytest
process, until a time budget is spent. B runs set ``PERFSUITE_TEST_SLOWDOWN`` so that
one backend's prefill and decode calls busy-wait a given fraction longer. The script
then forms trials from consecutive runs, as a same-job A/B comparison pools them, gates
each trial with ``perfsuite.compare.compare_runs`` and reports two rates:

- false alarms: both sides run the same code (A/A, and B/B) and the outcome is REGRESSION;
- detection: A against B, the outcome is REGRESSION and a slowed metric is flagged slower.

Trials slide over the runs one run at a time, so neighbouring trials share runs and are
not independent. Every trial counts in a rate's estimate, but its 95% Wilson interval
uses only the number of disjoint trials, so it is wider than one on every trial would be.

Usage::

    python scripts/gate_quality.py --budget-s 780 --output gate-quality.md
    python scripts/gate_quality.py --runs-dir RUNS --no-collect    # gate runs saved before
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import json
import logging
import math
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from perfsuite.ab import side_order
from perfsuite.compare import GateConfig, Outcome, SavedRun, Verdict, compare_runs, load_gate_config, load_run
from perfsuite.compare.errors import CompareError
from perfsuite.environment import collect_environment
from perfsuite.slowdown import SLOWDOWN_VARIABLE

logger = logging.getLogger("gate_quality")

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent

DEFAULT_MODEL = "synthetic:distilgpt2"
DEFAULT_BACKEND = "torch-fp32"
DEFAULT_SLOWDOWN = 0.10
DEFAULT_RUNS_PER_SIDE = 3
# 13 minutes of runs leaves time for gating within 15 minutes.
DEFAULT_BUDGET_S = 780.0
DEFAULT_RUN_TIMEOUT_S = 300.0
DEFAULT_SELECTION = "generate or first_token"

# One short generation and one short prefill: the full profile's 5 generate and 10
# first-token rounds, 1 thread, a 16-token prompt and 16 new tokens.
BENCHMARK_OPTIONS = (
    "--perf-no-extras",
    "--perf-threads", "1",
    "--perf-prompt-lengths", "16",
    "--perf-generate-prompt-lengths", "16",
    "--perf-new-tokens", "16",
    "--perf-batch-sizes", "1",
)

# Metrics that the test slowdown makes worse, per phase. Tokenization calls neither
# prefill nor decode, so the slowdown leaves it unchanged.
SLOWED_METRICS = {
    "generate": frozenset({"time_s", "time_to_first_token_s", "decode_token_s", "decode_tokens_per_second"}),
    "first-token": frozenset({"time_s"}),
}

CONFIDENCE = 0.95
TARGET_MAX_FALSE_ALARM_RATE = 0.01
TARGET_MIN_DETECTION_RATE = 0.95

CLEAN = "A"
SLOWED = "B"
RUN_FILE_PATTERN = re.compile(r"^(?P<pair>\d+)-(?P<label>[AB])\.json$")
MANIFEST_NAME = "manifest.json"


class GateQualityError(RuntimeError):
    """A benchmark run failed or the saved runs cannot be used."""


class TrialKind(enum.Enum):
    """The kinds of run that a trial compares, written as base side / head side."""

    CLEAN_CLEAN = "A/A"
    SLOWED_SLOWED = "B/B"
    CLEAN_SLOWED = "A/B"

    @property
    def is_null(self) -> bool:
        """Whether both sides run the same code, so any REGRESSION is a false alarm."""
        return self is not TrialKind.CLEAN_SLOWED


@dataclasses.dataclass(frozen=True)
class Settings:
    """Measurement settings: the benchmark runs, the trial size and the folder of saved runs."""

    model: str
    backend: str
    slowdown: float
    runs_per_side: int
    budget_s: float
    run_timeout_s: float
    selection: str
    extra_pytest_args: tuple[str, ...]
    runs_dir: Path
    collect: bool
    gate_config_path: Path

    @property
    def slowdown_value(self) -> str:
        return f"{self.backend}:{self.slowdown:g}"


@dataclasses.dataclass(frozen=True)
class CollectedRun:
    """One saved benchmark run: clean (A) or slowed (B), and its position in the alternation."""

    label: str
    pair: int
    path: Path
    wall_s: float | None = None
    load_1min: float | None = None


@dataclasses.dataclass(frozen=True)
class Collection:
    """The runs of one measurement and what the machine was doing around them."""

    runs: tuple[CollectedRun, ...]
    command: str
    wall_s: float | None
    load_before: float | None
    load_after: float | None

    def labelled(self, label: str) -> list[CollectedRun]:
        return sorted((run for run in self.runs if run.label == label), key=lambda run: run.pair)


@dataclasses.dataclass(frozen=True)
class Trial:
    """One gate comparison: base runs against head runs.

    ``independent`` marks the trials that share no run with each other, one per block of
    consecutive runs. Their count is the sample size of the confidence intervals.
    """

    kind: TrialKind
    base: tuple[Path, ...]
    head: tuple[Path, ...]
    independent: bool


@dataclasses.dataclass(frozen=True)
class TrialResult:
    """The gate's outcome for one trial and the metrics it flagged slower, as ``benchmark: metric``."""

    trial: Trial
    outcome: Outcome
    slower: tuple[str, ...]
    slower_expected: tuple[str, ...]

    @property
    def is_event(self) -> bool:
        """Whether the trial is a false alarm (same-code trial) or a detection (A/B trial)."""
        if self.trial.kind.is_null:
            return self.outcome is Outcome.REGRESSION
        return self.outcome is Outcome.REGRESSION and bool(self.slower_expected)


@dataclasses.dataclass(frozen=True)
class Rate:
    """The count of events in a set of trials, and how many of the trials are independent."""

    events: int
    trials: int
    independent_trials: int

    @property
    def estimate(self) -> float | None:
        return self.events / self.trials if self.trials else None

    def interval(self, confidence: float = CONFIDENCE) -> tuple[float, float] | None:
        # NOTE: this treats the estimate from overlapping trials as if it came from the disjoint
        # trials alone. Overlapping windows carry at least as much information, so the interval
        # is conservative, but it is an approximation, not an exact coverage guarantee.
        if self.estimate is None or self.independent_trials == 0:
            return None
        return wilson_interval(self.estimate, self.independent_trials, confidence)


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Measure the regression gate's false-alarm rate on same-code runs and its detection "
        "rate for an injected slowdown, and print a Markdown report.",
    )
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"--perf-model of every run (default: {DEFAULT_MODEL})")
    parser.add_argument(
        "--backend", default=DEFAULT_BACKEND, help=f"the backend that runs and that B runs slow down (default: {DEFAULT_BACKEND})"
    )
    parser.add_argument(
        "--slowdown", type=float, default=DEFAULT_SLOWDOWN,
        help=f"fraction by which B runs lengthen each prefill and decode call (default: {DEFAULT_SLOWDOWN})",
    )
    parser.add_argument(
        "--runs-per-side", type=int, default=DEFAULT_RUNS_PER_SIDE,
        help=f"runs pooled on each side of a trial, as in a same-job A/B comparison (default: {DEFAULT_RUNS_PER_SIDE})",
    )
    parser.add_argument(
        "--budget-s", type=float, default=DEFAULT_BUDGET_S,
        help=f"seconds to spend on benchmark runs, counted from the script's start (default: {DEFAULT_BUDGET_S:g})",
    )
    parser.add_argument(
        "--run-timeout-s", type=float, default=DEFAULT_RUN_TIMEOUT_S,
        help=f"seconds after which one benchmark run counts as failed (default: {DEFAULT_RUN_TIMEOUT_S:g})",
    )
    parser.add_argument(
        "--select", dest="selection", default=DEFAULT_SELECTION,
        help=f"pytest -k expression choosing the benchmarks of each run (default: {DEFAULT_SELECTION!r})",
    )
    parser.add_argument(
        "--pytest-arg", dest="extra_pytest_args", action="append", default=[], metavar="ARG",
        help="one more argument for every benchmark run, such as --perf-quick; repeat for several",
    )
    parser.add_argument(
        "--runs-dir", type=Path,
        help="folder for the saved runs (default: a new temporary folder, kept after the script ends)",
    )
    parser.add_argument(
        "--no-collect", action="store_true", help="gate the runs already saved in --runs-dir instead of running benchmarks"
    )
    parser.add_argument(
        "--gate-config", type=Path, default=REPOSITORY_ROOT / "pyproject.toml",
        help="pyproject.toml whose [tool.perfsuite.gate] settings the gate uses (default: the repository's)",
    )
    parser.add_argument("--output", type=Path, help="also write the Markdown report to this file")
    parser.add_argument("--verbose", action="store_true", help="log every benchmark run and trial")

    arguments = parser.parse_args(argv)
    if arguments.no_collect and arguments.runs_dir is None:
        parser.error("--no-collect needs --runs-dir, the folder of runs to gate")
    if arguments.runs_per_side < 1:
        parser.error(f"--runs-per-side must be at least 1, got {arguments.runs_per_side}")
    if not 0 < arguments.slowdown <= 10:
        parser.error(f"--slowdown must be above 0 and at most 10, got {arguments.slowdown:g}")
    if arguments.budget_s <= 0 or arguments.run_timeout_s <= 0:
        parser.error("--budget-s and --run-timeout-s must be positive numbers of seconds")
    return arguments


def settings_from(arguments: argparse.Namespace) -> Settings:
    runs_dir = arguments.runs_dir or Path(tempfile.mkdtemp(prefix="perfsuite-gate-quality-"))
    return Settings(
        model=arguments.model,
        backend=arguments.backend,
        slowdown=arguments.slowdown,
        runs_per_side=arguments.runs_per_side,
        budget_s=arguments.budget_s,
        run_timeout_s=arguments.run_timeout_s,
        selection=arguments.selection,
        extra_pytest_args=tuple(arguments.extra_pytest_args),
        runs_dir=runs_dir.resolve(),
        collect=not arguments.no_collect,
        gate_config_path=arguments.gate_config,
    )


# Collecting runs


def benchmark_command(settings: Settings, output: Path) -> list[str]:
    """Return the pytest command of one run. Clean and slowed runs differ only in their environment."""
    return [
        sys.executable, "-m", "pytest", "benchmarks/", "-q", "-p", "no:cacheprovider",
        "--perf-model", settings.model,
        "--perf-backends", settings.backend,
        *BENCHMARK_OPTIONS,
        "-k", settings.selection,
        *settings.extra_pytest_args,
        f"--benchmark-json={output}",
    ]


def run_environment(settings: Settings, label: str) -> dict[str, str]:
    """Return the environment of one run: hub access off, and the test slowdown set only in B runs."""
    environment = {**os.environ, "HF_HUB_OFFLINE": "1"}
    environment.pop(SLOWDOWN_VARIABLE, None)
    if label == SLOWED:
        environment[SLOWDOWN_VARIABLE] = settings.slowdown_value
    return environment


def run_benchmark(settings: Settings, label: str, pair: int) -> CollectedRun:
    """Run the benchmarks once in a fresh process and return the saved run.

    Raises GateQualityError when the run fails or times out.
    """
    output = settings.runs_dir / f"{pair:03d}-{label}.json"
    command = benchmark_command(settings, output)
    logger.debug("pair %d, run %s: %s", pair, label, shlex.join(command))

    load_1min = one_minute_load()
    started = time.monotonic()
    try:
        completed = subprocess.run(
            command,
            cwd=REPOSITORY_ROOT,
            env=run_environment(settings, label),
            capture_output=True,
            text=True,
            timeout=settings.run_timeout_s,
        )
    except subprocess.TimeoutExpired:
        raise GateQualityError(
            f"run {label} of pair {pair} timed out after {settings.run_timeout_s:g} s; raise --run-timeout-s"
        ) from None
    wall_s = time.monotonic() - started

    if completed.returncode != 0:
        tail = "\n".join((completed.stdout + completed.stderr).splitlines()[-20:])
        raise GateQualityError(f"run {label} of pair {pair} failed with exit code {completed.returncode}:\n{tail}")
    logger.info("pair %d, run %s: %.1f s", pair, label, wall_s)
    return CollectedRun(label, pair, output, wall_s, load_1min)


def collect_runs(
    settings: Settings,
    deadline: float,
    run: Callable[[Settings, str, int], CollectedRun] = run_benchmark,
    clock: Callable[[], float] = time.monotonic,
) -> list[CollectedRun]:
    """Alternate A and B runs, A first in even pairs, until the next run would end after ``deadline``.

    The next run is assumed to take as long as the slowest run so far. ``deadline`` is a
    ``clock`` reading; ``run`` and ``clock`` are parameters so tests can replace them.
    """
    settings.runs_dir.mkdir(parents=True, exist_ok=True)
    runs: list[CollectedRun] = []
    pair = 0
    while True:
        for side in side_order(pair):
            label = CLEAN if side == "base" else SLOWED
            expected_s = max((saved.wall_s or 0.0 for saved in runs), default=0.0)
            if clock() + expected_s > deadline:
                logger.info("budget spent after %d runs", len(runs))
                return runs
            runs.append(run(settings, label, pair))
        pair += 1


def write_manifest(collection: Collection, runs_dir: Path) -> None:
    document = {
        "command": collection.command,
        "wall_s": collection.wall_s,
        "load_before": collection.load_before,
        "load_after": collection.load_after,
        "runs": [{"file": run.path.name, "wall_s": run.wall_s, "load_1min": run.load_1min} for run in collection.runs],
    }
    (runs_dir / MANIFEST_NAME).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def read_saved_runs(runs_dir: Path) -> Collection:
    """Read the runs that an earlier collection saved in ``runs_dir``, with its manifest when present."""
    if not runs_dir.is_dir():
        raise GateQualityError(f"{runs_dir}: runs folder not found; pass the --runs-dir of an earlier measurement")

    manifest: dict = {}
    manifest_path = runs_dir / MANIFEST_NAME
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise GateQualityError(f"{manifest_path}: cannot be read ({error}); delete it to gate the runs without it") from None
    entries = {entry["file"]: entry for entry in manifest.get("runs", [])}

    runs = []
    for path in sorted(runs_dir.glob("*.json")):
        match = RUN_FILE_PATTERN.match(path.name)
        if match:
            entry = entries.get(path.name, {})
            runs.append(CollectedRun(match["label"], int(match["pair"]), path, entry.get("wall_s"), entry.get("load_1min")))
    if not runs:
        raise GateQualityError(f"{runs_dir}: contains no saved run named like 000-A.json; collect runs first")

    return Collection(
        runs=tuple(runs),
        command=manifest.get("command", "unknown"),
        wall_s=manifest.get("wall_s"),
        load_before=manifest.get("load_before"),
        load_after=manifest.get("load_after"),
    )


# Forming and gating trials


def null_trials(runs: Sequence[Path], runs_per_side: int, kind: TrialKind) -> list[Trial]:
    """Return same-code trials from every window of ``2 * runs_per_side`` consecutive runs.

    Within a window, runs alternate between base and head, so a slow drift of the machine
    falls on both sides alike. Windows starting at multiples of the window length share no
    run and are the independent ones.
    """
    window = 2 * runs_per_side
    trials = []
    for start in range(len(runs) - window + 1):
        chunk = runs[start:start + window]
        trials.append(Trial(kind, tuple(chunk[0::2]), tuple(chunk[1::2]), independent=start % window == 0))
    return trials


def ab_trials(clean: Sequence[Path], slowed: Sequence[Path], runs_per_side: int) -> list[Trial]:
    """Return A/B trials from every window of ``runs_per_side`` consecutive pairs of runs.

    ``clean[i]`` and ``slowed[i]`` are the two runs of pair i. Windows starting at
    multiples of ``runs_per_side`` share no run and are the independent ones.
    """
    pairs = min(len(clean), len(slowed))
    trials = []
    for start in range(pairs - runs_per_side + 1):
        base = tuple(clean[start:start + runs_per_side])
        head = tuple(slowed[start:start + runs_per_side])
        trials.append(Trial(TrialKind.CLEAN_SLOWED, base, head, independent=start % runs_per_side == 0))
    return trials


def form_trials(collection: Collection, runs_per_side: int) -> list[Trial]:
    clean = [run.path for run in collection.labelled(CLEAN)]
    slowed = [run.path for run in collection.labelled(SLOWED)]
    return [
        *null_trials(clean, runs_per_side, TrialKind.CLEAN_CLEAN),
        *null_trials(slowed, runs_per_side, TrialKind.SLOWED_SLOWED),
        *ab_trials(clean, slowed, runs_per_side),
    ]


def expected_slower(run: SavedRun, fullname: str, metric: str, backend: str) -> bool:
    """Return whether the test slowdown of ``backend`` makes this metric of this benchmark worse."""
    record = run.benchmarks.get(fullname)
    if record is None or record.setup.backend != backend:
        return False
    return metric in SLOWED_METRICS.get(record.setup.phase or "", frozenset())


def gate_trial(trial: Trial, config: GateConfig, backend: str, loaded: dict[tuple[Path, ...], SavedRun]) -> TrialResult:
    """Gate one trial and record the metrics flagged slower. ``loaded`` caches each pooled side by its files."""
    sides = []
    for paths in (trial.base, trial.head):
        if paths not in loaded:
            loaded[paths] = load_run(list(paths))
        sides.append(loaded[paths])
    base, head = sides

    result = compare_runs(base, head, config)
    slower = []
    slower_expected = []
    for benchmark, metric in result.metric_results():
        if metric.verdict is not Verdict.SLOWER:
            continue
        label = f"{benchmark.name}: {metric.metric}"
        slower.append(label)
        if expected_slower(head, benchmark.fullname, metric.metric, backend):
            slower_expected.append(label)

    logger.debug("%s trial: %s, slower: %s", trial.kind.value, result.outcome.value, ", ".join(slower) or "none")
    return TrialResult(trial, result.outcome, tuple(slower), tuple(slower_expected))


# Rates and intervals


def wilson_interval(proportion: float, trials: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Return the Wilson score interval of a binomial proportion observed in ``trials`` trials."""
    if trials < 1:
        raise ValueError(f"trials must be at least 1, got {trials}")
    if not 0.0 <= proportion <= 1.0:
        raise ValueError(f"proportion must be between 0 and 1, got {proportion}")

    z = statistics.NormalDist().inv_cdf(0.5 + confidence / 2.0)
    z_squared_per_trial = z * z / trials
    center = (proportion + z_squared_per_trial / 2.0) / (1.0 + z_squared_per_trial)
    half_width = z * math.sqrt(proportion * (1.0 - proportion) / trials + z_squared_per_trial / (4.0 * trials))
    half_width /= 1.0 + z_squared_per_trial
    return max(0.0, center - half_width), min(1.0, center + half_width)


def trials_to_show(target: float, *, at_most: bool, confidence: float = CONFIDENCE, limit: int = 100_000) -> int | None:
    """Return the fewest independent trials whose Wilson interval shows the target when no trial errs.

    With ``at_most``, no trial has the event (no false alarm) and the upper bound must be at
    most ``target``. Otherwise every trial has it (every slowdown detected) and the lower
    bound must be at least ``target``. Returns None beyond ``limit`` trials.
    """
    for trials in range(1, limit + 1):
        if at_most and wilson_interval(0.0, trials, confidence)[1] <= target:
            return trials
        if not at_most and wilson_interval(1.0, trials, confidence)[0] >= target:
            return trials
    return None


def rate_of(results: Sequence[TrialResult]) -> Rate:
    return Rate(
        events=sum(1 for result in results if result.is_event),
        trials=len(results),
        independent_trials=sum(1 for result in results if result.trial.independent),
    )


# The report


@dataclasses.dataclass(frozen=True)
class Report:
    """Everything the Markdown report shows."""

    settings: Settings
    collection: Collection
    results: tuple[TrialResult, ...]
    config: GateConfig
    machine: str
    commits: dict[str, list[str]]
    script_command: str
    gating_s: float

    def of_kind(self, *kinds: TrialKind) -> list[TrialResult]:
        return [result for result in self.results if result.trial.kind in kinds]

    @property
    def false_alarms(self) -> Rate:
        return rate_of(self.of_kind(TrialKind.CLEAN_CLEAN, TrialKind.SLOWED_SLOWED))

    @property
    def detection(self) -> Rate:
        return rate_of(self.of_kind(TrialKind.CLEAN_SLOWED))


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def interval_text(rate: Rate) -> str:
    interval = rate.interval()
    if interval is None:
        return "n/a"
    return f"{percent(interval[0])} to {percent(interval[1])}"


def gate_settings_text(config: GateConfig) -> str:
    thresholds = config.thresholds
    text = (
        f"alpha {thresholds.alpha:g}, min_effect {thresholds.min_effect:g}, resamples {thresholds.resamples}, "
        f"min_rounds {thresholds.min_rounds}, seed {thresholds.seed}"
    )
    if config.overrides:
        text += f"; {len(config.overrides)} override(s) from the config file"
    return text


def load_text(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def run_load_text(collection: Collection) -> str:
    loads = [run.load_1min for run in collection.runs if run.load_1min is not None]
    if not loads:
        return "n/a"
    return f"{min(loads):.2f} to {max(loads):.2f}, median {statistics.median(loads):.2f}"


def run_commits(collection: Collection) -> dict[str, list[str]]:
    """Return the run names per commit that pytest-benchmark recorded, with " (dirty)" for local edits."""
    commits: dict[str, list[str]] = {}
    for run in sorted(collection.runs, key=lambda run: run.path.name):
        document = json.loads(run.path.read_text(encoding="utf-8"))
        info = document.get("commit_info") or {}
        commit = str(info.get("id") or "unknown")[:12]
        if info.get("dirty"):
            commit += " (dirty)"
        commits.setdefault(commit, []).append(run.path.stem)
    return commits


def commits_text(commits: dict[str, list[str]]) -> str:
    # NOTE: a dirty working tree can change between two runs without changing this record,
    # so one commit shows only that no commit happened while the runs were collected.
    if len(commits) == 1:
        return f"commit {next(iter(commits))} in every run"
    parts = [f"{commit} in {len(names)} run(s) ({names[0]} to {names[-1]})" for commit, names in commits.items()]
    return f"**{len(commits)} commits**, so the code changed while runs were collected: " + "; ".join(parts)


def run_time_text(collection: Collection) -> str:
    clean = len(collection.labelled(CLEAN))
    slowed = len(collection.labelled(SLOWED))
    text = f"{clean} clean (A) + {slowed} slowed (B) = {clean + slowed}"
    wall_times = [run.wall_s for run in collection.runs if run.wall_s is not None]
    if wall_times:
        text += f", {statistics.mean(wall_times):.1f} s each on average"
    return text


def trial_count_text(report: Report) -> str:
    parts = []
    for kind in TrialKind:
        results = report.of_kind(kind)
        independent = sum(1 for result in results if result.trial.independent)
        parts.append(f"{kind.value} {len(results)} ({independent} independent)")
    return ", ".join(parts)


def render_summary_table(report: Report) -> list[str]:
    settings = report.settings
    collection = report.collection
    benchmark = shlex.join(["python", *benchmark_command(settings, Path("OUT.json"))[1:]])
    total_s = "n/a" if collection.wall_s is None else f"{collection.wall_s + report.gating_s:.0f} s"
    collection_s = "n/a" if collection.wall_s is None else f"{collection.wall_s:.0f} s"
    rows = [
        ("machine", report.machine),
        ("load average (1 min) before / after runs", f"{load_text(collection.load_before)} / {load_text(collection.load_after)}"),
        ("load average (1 min) at the start of each run", run_load_text(collection)),
        ("code under test", commits_text(report.commits)),
        ("command", f"`{report.script_command}`"),
        ("benchmark run", f"`HF_HUB_OFFLINE=1 {benchmark}`, in a fresh process each"),
        ("B runs", f"`{SLOWDOWN_VARIABLE}={settings.slowdown_value}`"),
        ("runs", run_time_text(collection)),
        ("runs per side of a trial", str(settings.runs_per_side)),
        ("trials", trial_count_text(report)),
        ("gate settings", gate_settings_text(report.config)),
        ("wall time", f"{total_s} (runs {collection_s}, gating {report.gating_s:.0f} s)"),
    ]
    if collection.command != report.script_command:
        rows.insert(rows.index(("command", f"`{report.script_command}`")) + 1, ("runs collected by", f"`{collection.command}`"))
    lines = ["| | |", "| --- | --- |"]
    lines.extend(f"| {name} | {value} |" for name, value in rows)
    return lines


def render_rate_table(report: Report) -> list[str]:
    lines = [
        f"| rate | trials | events / trials | independent trials | estimate | {CONFIDENCE:.0%} Wilson interval | target |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    rows = [
        ("false alarms", "A/A", rate_of(report.of_kind(TrialKind.CLEAN_CLEAN)), ""),
        ("false alarms", "B/B", rate_of(report.of_kind(TrialKind.SLOWED_SLOWED)), ""),
        ("**false alarms**", "A/A and B/B", report.false_alarms, f"at most {percent(TARGET_MAX_FALSE_ALARM_RATE)}"),
        ("**detection**", "A/B", report.detection, f"at least {percent(TARGET_MIN_DETECTION_RATE)}"),
    ]
    for name, kinds, rate, target in rows:
        lines.append(
            f"| {name} | {kinds} | {rate.events} / {rate.trials} | {rate.independent_trials} | "
            f"{percent(rate.estimate)} | {interval_text(rate)} | {target} |"
        )
    return lines


def render_verdict(report: Report) -> list[str]:
    false_alarms, detection = report.false_alarms, report.detection
    estimates_met = (
        false_alarms.estimate is not None and detection.estimate is not None
        and false_alarms.estimate <= TARGET_MAX_FALSE_ALARM_RATE and detection.estimate >= TARGET_MIN_DETECTION_RATE
    )
    false_alarm_interval, detection_interval = false_alarms.interval(), detection.interval()
    intervals_met = (
        false_alarm_interval is not None and detection_interval is not None
        and false_alarm_interval[1] <= TARGET_MAX_FALSE_ALARM_RATE and detection_interval[0] >= TARGET_MIN_DETECTION_RATE
    )
    null_needed = trials_to_show(TARGET_MAX_FALSE_ALARM_RATE, at_most=True)
    detection_needed = trials_to_show(TARGET_MIN_DETECTION_RATE, at_most=False)
    runs_per_side = report.settings.runs_per_side
    null_runs = null_needed * 2 * runs_per_side
    detection_runs = detection_needed * runs_per_side * 2

    return [
        f"- Estimates within the target: {'yes' if estimates_met else 'no'}.",
        f"- {CONFIDENCE:.0%} intervals within the target: {'yes' if intervals_met else 'no'}.",
        f"- With no error at all, showing at most {percent(TARGET_MAX_FALSE_ALARM_RATE)} false alarms takes "
        f"{null_needed} independent same-code trials ({null_runs} runs{hours_text(report.collection, null_runs)}), "
        f"and showing at least {percent(TARGET_MIN_DETECTION_RATE)} detection takes {detection_needed} independent "
        f"A/B trials ({detection_runs} runs{hours_text(report.collection, detection_runs)}).",
    ]


def hours_text(collection: Collection, runs: int) -> str:
    """Return ", about N h" for ``runs`` runs at this measurement's mean run time, or "" when it is unknown."""
    wall_times = [run.wall_s for run in collection.runs if run.wall_s is not None]
    if not wall_times:
        return ""
    return f", about {runs * statistics.mean(wall_times) / 3600:.1f} h at {statistics.mean(wall_times):.1f} s a run"


def render_metric_table(report: Report) -> list[str]:
    """Return how often each metric was flagged slower, per trial kind."""
    counts: dict[str, dict[TrialKind, int]] = {}
    for result in report.results:
        for label in result.slower:
            counts.setdefault(label, dict.fromkeys(TrialKind, 0))[result.trial.kind] += 1
    if not counts:
        return ["No metric was flagged slower in any trial."]

    totals = {kind: len(report.of_kind(kind)) for kind in TrialKind}
    header = " | ".join(f"{kind.value} ({totals[kind]} trials)" for kind in TrialKind)
    lines = [f"| benchmark: metric | {header} |", "| --- |" + " --- |" * len(TrialKind)]
    for label in sorted(counts):
        cells = " | ".join(str(counts[label][kind]) for kind in TrialKind)
        lines.append(f"| {label} | {cells} |")
    return lines


def render_spread_table(collection: Collection) -> list[str]:
    """Return the per-run medians of each benchmark's time per round: their range per kind of run, and B over A."""
    medians: dict[str, dict[str, list[float]]] = {}
    for run in collection.runs:
        document = json.loads(run.path.read_text(encoding="utf-8"))
        for entry in document.get("benchmarks", []):
            per_label = medians.setdefault(entry["name"], {CLEAN: [], SLOWED: []})
            per_label[run.label].append(statistics.median(entry["stats"]["data"]))

    lines = [
        "| benchmark | A run medians, min to max (ms) | B run medians, min to max (ms) | median of B / median of A |",
        "| --- | --- | --- | --- |",
    ]
    for name in sorted(medians):
        clean, slowed = medians[name][CLEAN], medians[name][SLOWED]
        ratio = f"{statistics.median(slowed) / statistics.median(clean):.3f}" if clean and slowed else "n/a"
        lines.append(f"| {name} | {_range_ms(clean)} | {_range_ms(slowed)} | {ratio} |")
    return lines


def _range_ms(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"{1e3 * min(values):.2f} to {1e3 * max(values):.2f}"


def render_trial_table(report: Report) -> list[str]:
    lines = ["| kind | base runs | head runs | independent | outcome | flagged slower |", "| --- | --- | --- | --- | --- | --- |"]
    for result in report.results:
        trial = result.trial
        base = ", ".join(path.stem for path in trial.base)
        head = ", ".join(path.stem for path in trial.head)
        independent = "yes" if trial.independent else ""
        flagged = ", ".join(result.slower) or "none"
        lines.append(f"| {trial.kind.value} | {base} | {head} | {independent} | {result.outcome.value} | {flagged} |")
    return lines


def render_markdown(report: Report) -> str:
    sections = [
        ["# Regression gate quality", ""],
        render_summary_table(report),
        ["", "## Rates", ""],
        render_rate_table(report),
        [""],
        render_verdict(report),
        [
            "",
            "A false alarm is a same-code trial (A/A or B/B) whose outcome is REGRESSION. A detection is an A/B "
            "trial whose outcome is REGRESSION with at least one metric that the slowdown affects flagged slower. "
            "Trials slide over consecutive runs one run at a time, so they share runs. The estimates count every "
            "trial, and each interval uses only the independent trials, which share no run.",
            "",
            "## Metrics flagged slower",
            "",
        ],
        render_metric_table(report),
        ["", "## Run-to-run spread of the time per round", ""],
        render_spread_table(report.collection),
        ["", "## Trials", ""],
        render_trial_table(report),
    ]
    return "\n".join(line for section in sections for line in section) + "\n"


def describe_machine() -> str:
    stamp = collect_environment()
    flags = ", ".join(stamp.kernel_flags) or "none"
    return (
        f"{stamp.cpu_model}, {stamp.physical_cores} physical / {stamp.logical_cores} logical cores, "
        f"kernel flags {flags}; torch {stamp.versions.get('torch')}"
    )


def one_minute_load() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


# Entry point


def measure(settings: Settings, script_command: str, started: float) -> Report:
    """Collect runs (unless reusing saved ones), gate every trial and return the report."""
    if settings.collect:
        load_before = one_minute_load()
        runs = collect_runs(settings, deadline=started + settings.budget_s)
        collection = Collection(tuple(runs), script_command, time.monotonic() - started, load_before, one_minute_load())
        write_manifest(collection, settings.runs_dir)
    else:
        collection = read_saved_runs(settings.runs_dir)
    logger.info("runs kept in %s", settings.runs_dir)

    config = load_gate_config(settings.gate_config_path)
    trials = form_trials(collection, settings.runs_per_side)
    if not trials:
        logger.warning(
            "%d runs are too few for a trial with %d run(s) per side; raise --budget-s",
            len(collection.runs), settings.runs_per_side,
        )

    commits = run_commits(collection)
    if len(commits) > 1:
        logger.warning("the runs come from %d commits, so the code changed during collection: %s", len(commits), ", ".join(commits))

    gating_started = time.monotonic()
    loaded: dict[tuple[Path, ...], SavedRun] = {}
    results = tuple(gate_trial(trial, config, settings.backend, loaded) for trial in trials)
    return Report(
        settings=settings,
        collection=collection,
        results=results,
        config=config,
        machine=describe_machine(),
        commits=commits,
        script_command=script_command,
        gating_s=time.monotonic() - gating_started,
    )


def main(argv: Sequence[str] | None = None) -> int:
    started = time.monotonic()
    arguments = parse_arguments(argv)
    logging.basicConfig(level=logging.DEBUG if arguments.verbose else logging.INFO, format="%(asctime)s %(message)s")
    settings = settings_from(arguments)
    script_command = shlex.join(["python", "scripts/gate_quality.py", *(sys.argv[1:] if argv is None else argv)])

    try:
        report = measure(settings, script_command, started)
    except (GateQualityError, CompareError) as error:
        logger.error("%s", error)
        return 1

    markdown = render_markdown(report)
    print(markdown, end="")
    if arguments.output:
        arguments.output.write_text(markdown, encoding="utf-8")
        logger.info("report written to %s", arguments.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
