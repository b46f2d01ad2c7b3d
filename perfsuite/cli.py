"""The ``perfsuite`` command: ``compare`` gates head against base, ``ab`` measures both sides in one
job and gates, ``report`` writes an HTML page, ``export`` converts a saved run for dashboards.

Exit codes of ``compare`` and ``ab``: 0 pass, 1 regression, 2 cannot compare (mismatch,
missing or unreadable benchmarks, or nothing compared). Any usage or input error also
exits 2, with ``perfsuite: error: ...`` on standard error.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from perfsuite.ab import AbConfig, run_ab
from perfsuite.compare.config import load_gate_config
from perfsuite.compare.gate import GateResult, run_gate
from perfsuite.compare.stats import Verdict
from perfsuite.compare.runs import load_run
from perfsuite.errors import PerfsuiteError
from perfsuite.report.exports import ExportFormat, GithubBenchmarkTool, write_export
from perfsuite.report.html import write_report
from perfsuite.report.markdown import render_markdown
from perfsuite.report.terminal import render_terminal

logger = logging.getLogger(__name__)

ERROR_EXIT_CODE = 2


class UsageError(PerfsuiteError, ValueError):
    """A command-line argument is invalid. The message is argparse's own where argparse found it."""


class ReportWriteError(PerfsuiteError, OSError):
    """The Markdown report could not be written."""


class _ArgumentParser(argparse.ArgumentParser):
    # argparse exits on its own errors, so raising here lets main() return 2 like every other error.
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(prog="perfsuite", description="Gate, report and export perfsuite benchmark runs.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to standard error")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_ArgumentParser)

    compare = commands.add_parser(
        "compare",
        help="gate a head run against a base run",
        description="Compare per-round data of two saved runs. Exit 0: pass, 1: regression, 2: cannot compare.",
    )
    compare.add_argument("base", help="baseline: a pytest-benchmark JSON file, or a folder whose *.json are pooled")
    compare.add_argument("head", help="current run: a pytest-benchmark JSON file, or a folder whose *.json are pooled")
    _add_gate_options(compare)

    ab = commands.add_parser(
        "ab",
        help="measure a base revision and the working tree in this job, interleaved, and gate",
        description="Check out BASE into a temporary git worktree, run the benchmarks of both sides in "
        "alternating order (base, head, head, base, ...), pool each side's rounds and gate. "
        "Exit 0: pass, 1: regression, 2: cannot compare.",
    )
    ab.add_argument("--base", required=True, metavar="REF", help="git revision to compare against, e.g. origin/main")
    ab.add_argument(
        "--pairs", type=int, default=5,
        help="base/head run pairs (default: 5; with 3, same-code false alarms reached 4%% in the recorded gate-quality run)",
    )
    ab.add_argument("--output", default="ab-results", metavar="DIR", help="folder for the saved runs (default: ab-results)")
    ab.add_argument(
        "--pytest-args",
        default="--perf-quick --perf-no-extras",
        help="arguments for each benchmark run, as one shell-quoted string (default: '--perf-quick --perf-no-extras')",
    )
    ab.add_argument(
        "--extend-budget",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="while some verdicts are inconclusive, run more pairs for up to SECONDS (default: 0, no extra pairs)",
    )
    ab.add_argument(
        "--allow-measurement-change",
        action="store_true",
        help="compare even when the benchmark modules or timing code differ between the two sides",
    )
    _add_gate_options(ab)

    report = commands.add_parser("report", help="write a self-contained HTML report of a saved run")
    report.add_argument("run", help="a pytest-benchmark JSON file, or a folder whose *.json are pooled")
    report.add_argument("--compare", metavar="BASE", help="also chart the comparison with this base run or folder")
    report.add_argument("--output", default="perfsuite-report.html", metavar="FILE", help="HTML file to write")
    report.add_argument("--config", metavar="FILE", help="pyproject.toml with a [tool.perfsuite.gate] section")

    export = commands.add_parser("export", help="convert a saved run for Bencher or github-action-benchmark")
    export.add_argument("run", help="a pytest-benchmark JSON file, or a folder whose *.json are pooled")
    export.add_argument(
        "--format", required=True, choices=[item.value for item in ExportFormat], help="target format"
    )
    export.add_argument(
        "--tool",
        choices=[item.value for item in GithubBenchmarkTool],
        help="github-action-benchmark tool the file is for; selects the metrics of that direction "
        "(default: customSmallerIsBetter; only with --format github-action-benchmark)",
    )
    export.add_argument("-o", "--output", default="-", metavar="OUT", help="output file (default: standard output)")
    return parser


def _add_gate_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--markdown", metavar="FILE", help="also write the report as Markdown to FILE")
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="pyproject.toml with a [tool.perfsuite.gate] section (default: ./pyproject.toml when present)",
    )
    parser.add_argument(
        "--allow-mismatch",
        action="store_true",
        default=None,
        help="compare even when machine, libraries, model or backend settings differ (the report lists them)",
    )
    parser.add_argument(
        "--alpha", type=float, help="significance level of the Mann-Whitney U test (default from config, else 0.01)"
    )
    parser.add_argument(
        "--min-effect",
        type=float,
        help="smallest change that counts, as a fraction: 0.05 is 5%% (default from config, else 0.05); "
        "per-benchmark overrides in the config still apply",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code."""
    parser = build_parser()
    try:
        arguments = parser.parse_args(argv)
    except UsageError as error:
        return _fail(str(error))
    except SystemExit as exit_request:
        # --help ends here, and main() still returns an exit code rather than exiting.
        return exit_request.code if isinstance(exit_request.code, int) else 0

    # ab runs for minutes, so it always shows which side is running.
    _configure_logging(arguments.verbose or arguments.command == "ab")
    try:
        if arguments.command == "compare":
            return _compare(arguments)
        if arguments.command == "ab":
            return _ab(arguments)
        if arguments.command == "report":
            return _report(arguments)
        return _export(arguments)
    except PerfsuiteError as error:
        return _fail(str(error))


def _gate_config(arguments: argparse.Namespace):
    return load_gate_config(arguments.config).with_options(
        alpha=arguments.alpha, min_effect=arguments.min_effect, allow_mismatch=arguments.allow_mismatch
    )


def _compare(arguments: argparse.Namespace) -> int:
    result = run_gate(arguments.base, arguments.head, _gate_config(arguments))
    return _publish(result, arguments)


def _ab(arguments: argparse.Namespace) -> int:
    config = AbConfig(
        base_ref=arguments.base,
        output_dir=Path(arguments.output),
        pairs=arguments.pairs,
        pytest_args=tuple(shlex.split(arguments.pytest_args)),
        allow_measurement_change=arguments.allow_measurement_change,
        extend_budget_s=arguments.extend_budget,
    )
    gate_config = _gate_config(arguments)

    def decided(base_dir: Path, head_dir: Path) -> bool:
        return run_gate(base_dir, head_dir, gate_config).count(Verdict.INCONCLUSIVE) == 0

    run = run_ab(config, decided)
    if run.measurement_changes:
        sys.stdout.write(
            "NOTE: the measurement code differs between the sides (" + ", ".join(run.measurement_changes) + "); "
            "compared anyway because --allow-measurement-change was given.\n"
        )
    result = run_gate(run.base_dir, run.head_dir, gate_config)
    sys.stdout.write(f"Ran {run.pairs_run} base/head pairs against {run.base_commit[:12]}.\n")
    return _publish(result, arguments)


def _report(arguments: argparse.Namespace) -> int:
    comparison = None
    if arguments.compare:
        comparison = run_gate(arguments.compare, arguments.run, load_gate_config(arguments.config))

    path = write_report(Path(arguments.output), load_run(arguments.run), comparison)
    sys.stdout.write(f"Wrote {path}\n")
    return 0


def _publish(result: GateResult, arguments: argparse.Namespace) -> int:
    """Print the terminal table, write Markdown where asked and to the GitHub job summary; return the exit code."""
    sys.stdout.write(render_terminal(result))

    markdown = render_markdown(result)
    if arguments.markdown:
        _write_text(Path(arguments.markdown), markdown, append=False)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        _write_text(Path(summary), markdown, append=True)
    return result.outcome.exit_code


def _export(arguments: argparse.Namespace) -> int:
    export_format = ExportFormat(arguments.format)
    if export_format is ExportFormat.BENCHER and arguments.tool is not None:
        raise UsageError("--tool applies to --format github-action-benchmark only; drop it for --format bencher")

    tool = GithubBenchmarkTool(arguments.tool or GithubBenchmarkTool.SMALLER_IS_BETTER.value)
    write_export(load_run(arguments.run), export_format, arguments.output, tool)
    return 0


def _write_text(path: Path, text: str, append: bool) -> None:
    try:
        with path.open("a" if append else "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
    except OSError as error:
        raise ReportWriteError(f"{path}: cannot write the report ({error}); check the folder exists and is writable") from None


def _fail(message: str) -> int:
    sys.stderr.write(f"perfsuite: error: {message}\n")
    return ERROR_EXIT_CODE


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="perfsuite: %(levelname)s: %(message)s",
        stream=sys.stderr,
    )


if __name__ == "__main__":
    sys.exit(main())
