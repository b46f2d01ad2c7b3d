"""Same-job A/B: measure a base revision and the working tree on one machine, interleaved.

Runner-to-runner noise on shared CI is larger than the regressions worth catching, so
both sides run in the same job, alternating base, head, base, head, and the gate pools
each side's rounds. The base revision is checked out into a temporary git worktree and
runs its own benchmark code and its own ``perfsuite``. When the code that defines the
measured work differs between the sides, the command rejects the comparison unless it is
explicitly allowed.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from perfsuite.errors import PerfsuiteError

logger = logging.getLogger(__name__)

# Files whose change alters what a benchmark measures, not how fast the code under test is.
MEASUREMENT_PATHS = (
    "benchmarks",
    "conftest.py",
    "perfsuite/measure.py",
    "perfsuite/timing.py",
    "perfsuite/prompts.py",
    "perfsuite/backends/base.py",
    "perfsuite/config.py",
    "perfsuite/pytest_plugin.py",
)


class AbError(PerfsuiteError, RuntimeError):
    """The A/B run could not be set up or one of its benchmark runs failed."""


@dataclass(frozen=True)
class AbConfig:
    """Settings of an A/B run: the base revision, the output folder and the number of alternating pairs."""

    base_ref: str
    output_dir: Path
    repository: Path = Path(".")
    pairs: int = 5
    pytest_args: tuple[str, ...] = ("--perf-quick",)
    allow_measurement_change: bool = False
    timeout_s: float = 1800.0
    # Seconds that extra pairs may take while some verdicts are still inconclusive; 0 runs no extra pair.
    extend_budget_s: float = 0.0

    def __post_init__(self) -> None:
        if self.pairs < 1:
            raise AbError(f"pairs must be at least 1, got {self.pairs}")
        if self.extend_budget_s < 0:
            raise AbError(f"the extension budget must be 0 or more seconds, got {self.extend_budget_s}")


@dataclass(frozen=True)
class AbRun:
    """The folders of each side's saved runs, the measurement files that differed, and the pairs run."""

    base_commit: str
    base_dir: Path
    head_dir: Path
    measurement_changes: tuple[str, ...] = field(default_factory=tuple)
    pairs_run: int = 0


# Returns True when the runs saved so far in (base folder, head folder) decide every verdict.
DecidedCheck = Callable[[Path, Path], bool]


def run_ab(config: AbConfig, decided: DecidedCheck | None = None) -> AbRun:
    """Run both sides ``config.pairs`` times in alternating order and return where the runs were saved.

    With ``decided`` and a positive ``extend_budget_s``, more pairs follow while ``decided``
    returns False and the next pair is expected to fit in the budget.

    Raises AbError when the base revision is unknown, the measurement code differs and
    ``allow_measurement_change`` is off, or a benchmark run fails.
    """
    repository = config.repository.resolve()
    base_commit = _git(repository, "rev-parse", "--verify", f"{config.base_ref}^{{commit}}")
    changes = measurement_changes(repository, base_commit)
    if changes and not config.allow_measurement_change:
        raise AbError(
            f"the measurement code differs between {config.base_ref} and the working tree ({', '.join(changes)}), "
            f"so the two sides may measure different work; review the change and pass "
            f"--allow-measurement-change to compare anyway"
        )

    base_dir = config.output_dir / "base"
    head_dir = config.output_dir / "head"
    base_dir.mkdir(parents=True, exist_ok=True)
    head_dir.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="perfsuite-ab-") as scratch:
        worktree = Path(scratch) / "base"
        _git(repository, "worktree", "add", "--detach", str(worktree), base_commit)
        try:
            pairs_run = _alternate(config, worktree, repository, base_dir, head_dir, decided)
        finally:
            _git(repository, "worktree", "remove", "--force", str(worktree))

    return AbRun(base_commit, base_dir, head_dir, tuple(changes), pairs_run)


def measurement_changes(repository: Path, base_commit: str) -> list[str]:
    """Return the measurement files that differ between ``base_commit`` and the working tree."""
    output = _git(repository, "diff", "--name-only", base_commit, "--", *MEASUREMENT_PATHS)
    return [line for line in output.splitlines() if line]


def side_order(pair: int) -> tuple[str, str]:
    """Return which side runs first in ``pair``: base first in even pairs, head first in odd ones.

    Alternating the order spreads slow drifts (heating, a neighbour job starting) over both sides.
    """
    return ("base", "head") if pair % 2 == 0 else ("head", "base")


def _alternate(
    config: AbConfig, worktree: Path, repository: Path, base_dir: Path, head_dir: Path, decided: DecidedCheck | None
) -> int:
    """Run the pairs, then extra pairs while verdicts are undecided and the budget allows; return the pair count."""
    sides = {"base": (worktree, base_dir), "head": (repository, head_dir)}

    def run_pair(pair: int) -> float:
        started = time.monotonic()
        for side in side_order(pair):
            source, target = sides[side]
            _run_benchmarks(config, side, source, target / f"{pair:02d}.json")
        return time.monotonic() - started

    pair_seconds = max(run_pair(pair) for pair in range(config.pairs))
    if decided is None or config.extend_budget_s <= 0:
        return config.pairs

    pairs = config.pairs
    extension_started = time.monotonic()
    while not decided(base_dir, head_dir):
        remaining = config.extend_budget_s - (time.monotonic() - extension_started)
        if remaining < pair_seconds:
            logger.info("Some verdicts are still inconclusive, but another pair would not fit in the budget")
            break
        logger.info("Some verdicts are inconclusive; running pair %d (%.0f s of budget left)", pairs + 1, remaining)
        pair_seconds = max(pair_seconds, run_pair(pairs))
        pairs += 1
    return pairs


def _run_benchmarks(config: AbConfig, side: str, source: Path, output: Path) -> None:
    command = [
        sys.executable, "-m", "pytest", "benchmarks/", "-p", "no:cacheprovider", "-q",
        "--benchmark-save-data", f"--benchmark-json={output.resolve()}", *config.pytest_args,
    ]
    # The source folder goes first on the import path, so each side runs its own perfsuite.
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(source), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}

    logger.info("Running the %s side in %s", side, source)
    try:
        completed = subprocess.run(
            command, cwd=source, env=environment, capture_output=True, text=True, timeout=config.timeout_s
        )
    except subprocess.TimeoutExpired as error:
        raise AbError(f"the {side} benchmark run timed out after {config.timeout_s:.0f} s") from error

    if completed.returncode != 0:
        tail = "\n".join((completed.stdout + completed.stderr).splitlines()[-20:])
        raise AbError(f"the {side} benchmark run in {source} failed with exit code {completed.returncode}:\n{tail}")


def _git(repository: Path, *arguments: str) -> str:
    try:
        completed = subprocess.run(
            ["git", "-C", str(repository), *arguments], capture_output=True, text=True, timeout=120, check=True
        )
    except subprocess.CalledProcessError as error:
        raise AbError(f"git {' '.join(arguments)} failed: {error.stderr.strip()}") from error
    return completed.stdout.strip()

