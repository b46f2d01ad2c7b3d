"""Render a gate result as a plain-text table for terminals and CI logs."""

from __future__ import annotations

from perfsuite.compare.gate import GateResult
from perfsuite.compare.table import (
    COLUMNS,
    inconclusive_warning,
    mismatch_lines,
    result_rows,
    single_run_warning,
    summary_line,
    thresholds_line,
)


def render_terminal(result: GateResult) -> str:
    """Return aligned columns, one row per metric, followed by mismatches, warnings and the outcome."""
    lines = []
    rows = [row.cells() for row in result_rows(result)]
    if rows:
        # The note column is last and left unpadded, so long notes do not widen every line.
        widths = [max(len(cells[index]) for cells in [COLUMNS, *rows]) for index in range(len(COLUMNS) - 1)]
        for cells in [COLUMNS, *rows]:
            padded = [cell.ljust(width) for cell, width in zip(cells, widths)]
            lines.append("  ".join([*padded, cells[-1]]).rstrip())
        lines.append("")

    lines.append(f"base: {', '.join(result.base_sources)}")
    lines.append(f"head: {', '.join(result.head_sources)}")
    lines.append(f"settings: {thresholds_line(result)}")
    for mismatch in mismatch_lines(result):
        lines.append(f"mismatch: {mismatch}")

    for warning in (single_run_warning(result), inconclusive_warning(result)):
        if warning:
            lines.append(f"note: {warning}")
    lines.append(summary_line(result))
    return "\n".join(lines) + "\n"
