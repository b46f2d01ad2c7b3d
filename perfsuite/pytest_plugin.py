"""The pytest plugin: options, fixtures, the run header, the summary and the machine_info stamp.

Loaded by the repository's root ``conftest.py``. Options are validated when pytest
configures, so a bad value is a usage error before anything is built.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import pytest

from perfsuite.backends.base import Backend
from perfsuite.backends.registry import BACKENDS, parse_backend_ids
from perfsuite.config import (
    FULL_PROFILE,
    QUICK_PROFILE,
    SuiteConfig,
    Sweeps,
    default_cache_dir,
    default_thread_counts,
    parse_int_list,
)
from perfsuite.environment import collect_environment
from perfsuite.errors import InvalidOptionError, PerfsuiteError
from perfsuite.measure import PhaseBenchmark
from perfsuite.models.spec import DEFAULT_MODEL, ModelSpec
from perfsuite.prompts import Prompt
from perfsuite.pytest_gate import gate_current_run
from perfsuite.compare.gate import Outcome
from perfsuite.report.terminal import render_terminal
from perfsuite.report.summary import summary_lines
from perfsuite.session import PerfSession

SESSION_KEY = pytest.StashKey[PerfSession]()
PROGRESS_KEY = pytest.StashKey[logging.Handler]()
GATE_KEY = pytest.StashKey[str]()
# The two-sided Mann-Whitney U test reaches p < 0.01 only with 5 or more rounds per side (2 / C(10, 5) = 0.008).
GATE_MIN_ROUNDS = 5

# Sweep options: option name, environment variable, the Sweeps field, help text.
SWEEP_OPTIONS = (
    ("--perf-prompt-lengths", "PERFSUITE_PROMPT_LENGTHS", "prompt_lengths", "prompt tokens for tokenize and first token"),
    ("--perf-generate-prompt-lengths", "PERFSUITE_GENERATE_PROMPT_LENGTHS", "generate_prompt_lengths", "prompt tokens for generate"),
    ("--perf-new-tokens", "PERFSUITE_NEW_TOKENS", "new_tokens", "new tokens per generation"),
    ("--perf-batch-sizes", "PERFSUITE_BATCH_SIZES", "batch_sizes", "sequences per batch for generate"),
)


class TerminalProgressHandler(logging.Handler):
    """Shows perfsuite's INFO progress (model build, ONNX export) on the terminal while pytest runs."""

    def __init__(self, reporter, capture_manager) -> None:
        super().__init__(level=logging.INFO)
        self.reporter = reporter
        self.capture_manager = capture_manager

    def emit(self, record: logging.LogRecord) -> None:
        # Backends are built inside fixture setup, where pytest captures output; write past it.
        if self.capture_manager is None:
            self._write(record)
            return
        with self.capture_manager.global_and_fixture_disabled():
            self._write(record)

    def _write(self, record: logging.LogRecord) -> None:
        self.reporter.ensure_newline()
        self.reporter.write_line(f"perfsuite: {record.getMessage()}")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("perfsuite", "llm-perfsuite benchmarks")
    group.addoption(
        "--perf-model",
        default=os.environ.get("PERFSUITE_MODEL", DEFAULT_MODEL),
        help="model to benchmark: a hub id, a save_pretrained() directory or synthetic:distilgpt2 "
        f"(default: $PERFSUITE_MODEL or {DEFAULT_MODEL}, which falls back to synthetic:distilgpt2 offline)",
    )
    group.addoption(
        "--perf-backends",
        default=os.environ.get("PERFSUITE_BACKENDS", "all"),
        help=f"comma-separated backend ids to run: {', '.join(BACKENDS)}, or all (default: $PERFSUITE_BACKENDS or all)",
    )
    group.addoption(
        "--perf-quick",
        action="store_true",
        default=os.environ.get("PERFSUITE_QUICK", "") == "1",
        help="quick profile for smoke runs: one prompt length, 8 new tokens, 3 rounds (or PERFSUITE_QUICK=1)",
    )
    group.addoption(
        "--perf-threads",
        default=os.environ.get("PERFSUITE_THREADS"),
        help="comma-separated intra-op thread counts, applied to torch and onnxruntime alike "
        "(default: $PERFSUITE_THREADS or 1 and the physical core count; the quick profile uses the core count)",
    )
    for option, variable, field, meaning in SWEEP_OPTIONS:
        group.addoption(
            option,
            default=os.environ.get(variable),
            help=f"comma-separated {meaning} (default: ${variable} or the profile's values)",
        )
    group.addoption(
        "--perf-rounds",
        default=os.environ.get("PERFSUITE_ROUNDS"),
        help="timed rounds of each first-token and generate benchmark, replacing the profile's "
        "(full: 10 and 5, quick: 3 and 3; default: $PERFSUITE_ROUNDS or the profile's)",
    )
    group.addoption(
        "--perf-gate",
        metavar="BASE",
        default=None,
        help="after the run, gate its per-round data against BASE (a saved JSON file or a folder of them); "
        "pytest then exits 1 on a regression and 2 when the runs cannot be compared",
    )
    group.addoption(
        "--perf-no-extras",
        action="store_true",
        default=os.environ.get("PERFSUITE_NO_EXTRAS", "") == "1",
        help="skip the per-backend memory, load-time, size and quality measurements (or PERFSUITE_NO_EXTRAS=1); "
        "for repeated latency-only runs such as A/B gating",
    )
    group.addoption(
        "--perf-cache-dir",
        default=None,
        help="folder for exported models (default: $PERFSUITE_CACHE_DIR or ~/.cache/perfsuite)",
    )


def pytest_configure(config: pytest.Config) -> None:
    try:
        suite_config = _suite_config(config)
    except InvalidOptionError as error:
        raise pytest.UsageError(f"{error} (check the --perf-* options and PERFSUITE_* environment variables)") from None

    config.stash[SESSION_KEY] = PerfSession(suite_config)


def _suite_config(config: pytest.Config) -> SuiteConfig:
    profile = QUICK_PROFILE if config.getoption("--perf-quick") else FULL_PROFILE
    rounds = config.getoption("--perf-rounds")
    if rounds:
        counts = parse_int_list(rounds, "--perf-rounds")
        if len(counts) != 1:
            raise InvalidOptionError(f"invalid --perf-rounds value {rounds!r}; pass one whole number such as 10")
        count = counts[0]
        profile = dataclasses.replace(profile, first_token_rounds=count, generate_rounds=count)
    cache_dir = config.getoption("--perf-cache-dir")
    return SuiteConfig(
        model=ModelSpec.parse(config.getoption("--perf-model")),
        backends=parse_backend_ids(config.getoption("--perf-backends")),
        profile=profile,
        sweeps=_sweeps(config, profile),
        cache_dir=Path(cache_dir).expanduser() if cache_dir else default_cache_dir(),
        measure_extras=not config.getoption("--perf-no-extras"),
    )


def _sweeps(config: pytest.Config, profile) -> Sweeps:
    values = {}
    for option, _, field, _ in SWEEP_OPTIONS:
        text = config.getoption(option)
        values[field] = parse_int_list(text, option) if text else getattr(profile, field)

    threads = config.getoption("--perf-threads")
    if threads:
        values["thread_counts"] = parse_int_list(threads, "--perf-threads")
    elif profile is QUICK_PROFILE:
        values["thread_counts"] = (max(default_thread_counts()),)
    else:
        values["thread_counts"] = default_thread_counts()
    return Sweeps(**values)


def _show_progress(config: pytest.Config) -> None:
    """Route perfsuite's progress logs to the terminal while benchmarks run."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or config.getoption("verbose") < 0:
        return

    handler = TerminalProgressHandler(reporter, config.pluginmanager.get_plugin("capturemanager"))
    package_logger = logging.getLogger("perfsuite")
    package_logger.addHandler(handler)
    package_logger.setLevel(min(package_logger.getEffectiveLevel(), logging.INFO))
    config.stash[PROGRESS_KEY] = handler


def pytest_unconfigure(config: pytest.Config) -> None:
    handler = config.stash.get(PROGRESS_KEY, None)
    if handler is not None:
        logging.getLogger("perfsuite").removeHandler(handler)


def pytest_report_header(config: pytest.Config) -> list[str]:
    suite_config = config.stash[SESSION_KEY].config
    sweeps = suite_config.sweeps
    lines = [
        f"perfsuite: model {suite_config.model}, backends {', '.join(suite_config.backends)}",
        f"perfsuite: {suite_config.profile.name} profile: prompts {list(sweeps.prompt_lengths)}, "
        f"generate prompts {list(sweeps.generate_prompt_lengths)}, new tokens {list(sweeps.new_tokens)}, "
        f"batch sizes {list(sweeps.batch_sizes)}, threads {list(sweeps.thread_counts)}",
    ]
    cores = collect_environment().physical_cores
    if cores and max(sweeps.thread_counts) > cores:
        lines.append(
            f"perfsuite: NOTE: {max(sweeps.thread_counts)} threads exceed the {cores} physical cores; "
            f"oversubscribed runs measure contention, not the runtime"
        )
    rounds = suite_config.profile.generate_rounds
    if config.getoption("--perf-gate") and rounds < GATE_MIN_ROUNDS:
        lines.append(
            f"perfsuite: NOTE: with {rounds} generate rounds a single run cannot reach p < 0.01, so --perf-gate "
            f"cannot flag generate metrics; use --perf-rounds {GATE_MIN_ROUNDS} or more, or pool runs with perfsuite ab"
        )
    return lines + [f"perfsuite: {line}" for line in collect_environment().header_lines()]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    sweeps = metafunc.config.stash[SESSION_KEY].config.sweeps
    backends = metafunc.config.stash[SESSION_KEY].config.backends
    parameters = {
        "perf_backend": backends,
        "perf_threads": sweeps.thread_counts,
        "prompt_length": sweeps.prompt_lengths,
        "generate_prompt_length": sweeps.generate_prompt_lengths,
        "new_tokens": sweeps.new_tokens,
        "batch_size": sweeps.batch_sizes,
    }
    id_prefixes = {"perf_threads": "t", "batch_size": "b", "new_tokens": "n", "generate_prompt_length": "p", "prompt_length": "p"}

    for name, values in parameters.items():
        if name not in metafunc.fixturenames:
            continue
        prefix = id_prefixes.get(name, "")
        metafunc.parametrize(
            name, values, indirect=name == "perf_backend", scope="session", ids=[f"{prefix}{value}" for value in values]
        )


def pytest_collection_finish(session: pytest.Session) -> None:
    """Load the model once benchmarks are collected and show what was loaded, before any timing."""
    uses_model = any("perf_backend" in getattr(item, "fixturenames", ()) for item in session.items)
    if not uses_model:
        return

    # Only benchmark runs show progress; unit tests of perfsuite keep their output quiet.
    _show_progress(session.config)
    perf_session = session.config.stash[SESSION_KEY]
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    try:
        info = perf_session.model().info
    except PerfsuiteError as error:
        pytest.exit(f"perfsuite: {error}", returncode=pytest.ExitCode.USAGE_ERROR)

    if reporter is not None:
        reporter.write_line(f"perfsuite model: {info.describe()}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Run the regression gate when --perf-gate is given and every benchmark passed."""
    base = session.config.getoption("--perf-gate")
    if not base or exitstatus != pytest.ExitCode.OK:
        return

    try:
        result = gate_current_run(session.config, base)
    except PerfsuiteError as error:
        session.config.stash[GATE_KEY] = f"perfsuite gate: cannot compare: {error}\n"
        session.exitstatus = Outcome.CANNOT_COMPARE.exit_code
        return

    session.config.stash[GATE_KEY] = render_terminal(result)
    session.exitstatus = result.outcome.exit_code


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    gate_report = config.stash.get(GATE_KEY, None)
    if gate_report is not None:
        terminalreporter.write_sep("=", "perfsuite gate")
        terminalreporter.write(gate_report)

    perf_session = config.stash.get(SESSION_KEY, None)
    # With --benchmark-disable nothing is timed, so there is nothing to summarize.
    if perf_session is None or not any("median_s" in result.extra_info for result in perf_session.results):
        return

    terminalreporter.write_sep("=", "perfsuite summary")
    for line in summary_lines(perf_session):
        terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def perf_session(request: pytest.FixtureRequest) -> PerfSession:
    """The run's PerfSession: configuration, model and backend cache."""
    return request.config.stash[SESSION_KEY]


@pytest.fixture(scope="session")
def perf_config(perf_session: PerfSession) -> SuiteConfig:
    return perf_session.config


@pytest.fixture(scope="session")
def perf_model(perf_session: PerfSession):
    return perf_session.model()


@pytest.fixture(scope="session")
def perf_backend(request: pytest.FixtureRequest, perf_session: PerfSession, perf_threads: int) -> Backend:
    """The backend named by the test's parameter, built once per run and thread count; a build failure fails its tests."""
    try:
        return perf_session.backend(request.param, perf_threads)
    except PerfsuiteError as error:
        pytest.fail(f"backend {request.param} could not be built: {error}", pytrace=False)


@pytest.fixture(scope="session")
def prompt(perf_session: PerfSession, prompt_length: int) -> Prompt:
    """A real-text prompt of exactly ``prompt_length`` tokens."""
    return perf_session.prompt(prompt_length)


@pytest.fixture(scope="session")
def generate_prompt(perf_session: PerfSession, generate_prompt_length: int) -> Prompt:
    """A real-text prompt of exactly ``generate_prompt_length`` tokens, for generation."""
    return perf_session.prompt(generate_prompt_length)


@pytest.fixture
def phase_benchmark(benchmark, perf_backend: Backend, perf_session: PerfSession) -> PhaseBenchmark:
    """pytest-benchmark's ``benchmark`` fixture with fixed rounds, phase metrics and perfsuite's extra_info."""
    return PhaseBenchmark(benchmark, perf_backend, perf_session)


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    """Stamp every saved run with the requested model, sweeps, profile and environment.

    pytest-benchmark compares this stamp before the model is loaded, so it holds only what
    the options fix. The loaded model's source and fingerprint go into each benchmark's extra_info.
    """
    perf_session = config.stash.get(SESSION_KEY, None)
    if perf_session is None:
        return

    suite_config = perf_session.config
    machine_info["perfsuite"] = {
        "model": str(suite_config.model),
        "backends": list(suite_config.backends),
        "thread_counts": list(suite_config.sweeps.thread_counts),
        "profile": suite_config.profile.name,
        "environment": collect_environment().to_record(include_commit=False),
    }
