"""Render a gate result as Markdown for GitHub job summaries and pull-request comments."""

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


def render_markdown(result: GateResult, title: str = "perfsuite regression gate") -> str:
    """Return a Markdown section: outcome, mismatches, warnings and one table row per metric."""
    lines = [f"### {title}: {result.outcome.value.upper()}", "", f"**{_escape(summary_line(result))}**", ""]
    lines.append(f"Base: {_code_list(result.base_sources)}  ")
    lines.append(f"Head: {_code_list(result.head_sources)}  ")
    lines.append(f"Settings: {thresholds_line(result)}")
    lines.append("")

    mismatches = mismatch_lines(result)
    if mismatches:
        lines.extend(["#### Mismatches", ""])
        if result.mismatch_allowed:
            lines.extend(["allow\\_mismatch is on, so differences marked allowed were compared anyway.", ""])
        lines.extend(f"- {_escape(line)}" for line in mismatches)
        lines.append("")

    for warning in (single_run_warning(result), inconclusive_warning(result)):
        if warning:
            lines.extend([f"> **Note:** {_escape(warning)}", ""])

    rows = result_rows(result)
    if rows:
        lines.append("| " + " | ".join(COLUMNS) + " |")
        lines.append("|" + "|".join(" --- " for _ in COLUMNS) + "|")
        for row in rows:
            cells = [_escape(cell) for cell in row.cells()]
            if row.verdict in ("slower", "faster"):
                cells[6] = f"**{cells[6]}**"
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _code_list(sources: tuple[str, ...]) -> str:
    return ", ".join(f"`{source}`" for source in sources)


def _escape(text: str) -> str:
    """Escape characters that would end a table cell or start Markdown formatting."""
    for character in ("\\", "|", "*", "_", "`", "<", ">"):
        text = text.replace(character, "\\" + character)
    return text.replace("\n", " ")
