"""The ``perfsuite`` command: ``compare`` gates head against base, ``export`` converts a saved run.

Exit codes of ``compare``: 0 pass, 1 regression, 2 cannot compare (mismatch, missing or
unreadable benchmarks, or nothing compared). Any usage or input error also exits 2, with
``perfsuite: error: ...`` on standard error.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from perfsuite.compare.config import load_gate_config
from perfsuite.compare.gate import run_gate
from perfsuite.compare.runs import load_run
from perfsuite.errors import PerfsuiteError
from perfsuite.report.exports import ExportFormat, GithubBenchmarkTool, write_export
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
    parser = _ArgumentParser(prog="perfsuite", description="Compare and export saved perfsuite benchmark runs.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to standard error")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_ArgumentParser)

    compare = commands.add_parser(
        "compare",
        help="gate a head run against a base run",
        description="Compare per-round data of two saved runs. Exit 0: pass, 1: regression, 2: cannot compare.",
    )
    compare.add_argument("base", help="baseline: a pytest-benchmark JSON file, or a folder whose *.json are pooled")
    compare.add_argument("head", help="current run: a pytest-benchmark JSON file, or a folder whose *.json are pooled")
    compare.add_argument("--markdown", metavar="FILE", help="also write the report as Markdown to FILE")
    compare.add_argument(
        "--config",
        metavar="FILE",
        help="pyproject.toml with a [tool.perfsuite.gate] section (default: ./pyproject.toml when present)",
    )
    compare.add_argument(
        "--allow-mismatch",
        action="store_true",
        default=None,
        help="compare even when machine, libraries, model or backend settings differ (the report lists them)",
    )
    compare.add_argument(
        "--alpha", type=float, help="significance level of the Mann-Whitney U test (default from config, else 0.01)"
    )
    compare.add_argument(
        "--min-effect",
        type=float,
        help="smallest change that counts, as a fraction: 0.05 is 5%% (default from config, else 0.05); "
        "per-benchmark overrides in the config still apply",
    )

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

    _configure_logging(arguments.verbose)
    try:
        if arguments.command == "compare":
            return _compare(arguments)
        return _export(arguments)
    except PerfsuiteError as error:
        return _fail(str(error))


def _compare(arguments: argparse.Namespace) -> int:
    config = load_gate_config(arguments.config).with_options(
        alpha=arguments.alpha, min_effect=arguments.min_effect, allow_mismatch=arguments.allow_mismatch
    )
    result = run_gate(arguments.base, arguments.head, config)

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
