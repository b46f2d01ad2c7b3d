"""Reports of the regression gate (Markdown and terminal tables) and exports of saved runs to other tools."""

from perfsuite.report.exports import ExportFormat, to_bencher_metric_format, to_github_action_benchmark, write_export
from perfsuite.report.markdown import render_markdown
from perfsuite.report.terminal import render_terminal

__all__ = [
    "ExportFormat",
    "render_markdown",
    "render_terminal",
    "to_bencher_metric_format",
    "to_github_action_benchmark",
    "write_export",
]
