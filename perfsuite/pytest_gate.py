"""The regression gate inside ``pytest benchmarks/ --perf-gate=BASE``: this run's rounds against a saved base."""

from __future__ import annotations

import pytest

from perfsuite.compare.config import load_gate_config
from perfsuite.compare.gate import GateResult, compare_runs
from perfsuite.compare.runs import load_run, parse_run_document

CURRENT_RUN = "this pytest run"


def gate_current_run(config: pytest.Config, base: str) -> GateResult:
    """Compare the benchmarks of this session, with their per-round data, against ``base`` (file or folder).

    Raises the compare package's errors (PerfsuiteError subclasses) when the base cannot be read.
    """
    # NOTE: _benchmarksession is pytest-benchmark's private session object (5.x); no public API
    # exposes the finished benchmarks with their per-round data before the session ends.
    benchmark_session = config._benchmarksession
    document = config.hook.pytest_benchmark_generate_json(
        config=config,
        benchmarks=benchmark_session.benchmarks,
        include_data=True,
        machine_info=benchmark_session.get_machine_info(),
        commit_info={},
    )
    head = parse_run_document(document, CURRENT_RUN)
    return compare_runs(load_run(base), head, load_gate_config())
