"""The terminal summary printed after a benchmark run: one row per backend, read at a glance."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from perfsuite.backends.registry import INT8_COUNTERPARTS
from perfsuite.timing import median

if TYPE_CHECKING:
    from perfsuite.session import BenchmarkResult, PerfSession

MISSING = "-"


@dataclass(frozen=True)
class BackendRow:
    """The headline figures of one backend."""

    backend_id: str
    time_to_first_token_s: float | None
    decode_p50_s: float | None
    decode_p90_s: float | None
    decode_tokens_per_second: float | None
    fraction_of_bound: float | None
    extras: dict[str, object]
    unstable: bool = False


def headline_result(results: list[BenchmarkResult], backend_id: str) -> BenchmarkResult | None:
    """Return the backend's generate result at batch 1 with the most threads, shortest prompt and fewest new tokens."""
    candidates = [
        result
        for result in results
        if result.backend_id == backend_id and result.extra_info["phase"] == "generate" and result.extra_info["batch_size"] == 1
    ]
    if not candidates:
        return None
    return min(
        candidates,
        key=lambda result: (-result.extra_info["threads"], result.extra_info["prompt_tokens"], result.extra_info["new_tokens"]),
    )


def backend_row(result: BenchmarkResult | None, backend_id: str, extras: dict[str, object]) -> BackendRow:
    if result is None:
        return BackendRow(backend_id, None, None, None, None, None, extras)

    info = result.extra_info
    metrics = info.get("metrics", {})
    percentiles = info.get("decode_token_percentiles_s") or {}
    bound = info.get("decode_bound") or {}
    return BackendRow(
        backend_id=backend_id,
        time_to_first_token_s=_median_of(metrics.get("time_to_first_token_s")),
        decode_p50_s=percentiles.get("p50"),
        decode_p90_s=percentiles.get("p90"),
        decode_tokens_per_second=_median_of(metrics.get("decode_tokens_per_second")),
        fraction_of_bound=bound.get("fraction_of_bound"),
        extras=extras,
        unstable=bool(info.get("stability_problems")),
    )


def summary_lines(session: PerfSession) -> list[str]:
    """Return the summary table, the work it describes, and the notes a reader must not miss."""
    backend_ids = [backend_id for backend_id in session.config.backends if any(r.backend_id == backend_id for r in session.results)]
    rows = [backend_row(headline_result(session.results, backend_id), backend_id, session.backend_extras(backend_id)) for backend_id in backend_ids]

    lines = [_work_line(session.results, backend_ids)]
    lines += _table(rows)
    lines.append(LEGEND)
    if any(row.unstable for row in rows):
        lines.append("* rounds of this row varied widely (see the warnings); treat its figures as rough.")
    lines += _int8_notes(rows)
    lines += session.summary_notes()
    return lines


def _work_line(results: list[BenchmarkResult], backend_ids: list[str]) -> str:
    headline = next((headline_result(results, backend_id) for backend_id in backend_ids if headline_result(results, backend_id)), None)
    if headline is None:
        return "No generate benchmark ran; the table shows the cost figures only."
    info = headline.extra_info
    return (
        f"Generation of {info['new_tokens']} new tokens after a {info['prompt_tokens']}-token prompt, batch 1, "
        f"{info['threads']} threads (medians over timed rounds; decode percentiles over every step):"
    )


LEGEND = (
    "TTFT: time to first token; tok p50/p90: per-token decode latency; tok/s: decode tokens per second; "
    "bw bound: bandwidth-bound step time over measured p50; peak MB, load s, disk MB: from a fresh process; "
    "max|dlogit|, agree, ppl: logit difference, greedy agreement and perplexity against torch-fp32."
)

COLUMNS = (
    ("backend", 20),
    ("TTFT ms", 8),
    ("tok p50 ms", 10),
    ("tok p90 ms", 10),
    ("tok/s", 7),
    ("bw bound", 8),
    ("peak MB", 8),
    ("load s", 7),
    ("disk MB", 8),
    ("max|dlogit|", 11),
    ("agree", 6),
    ("ppl", 8),
)


def _table(rows: list[BackendRow]) -> list[str]:
    header = " ".join(name.rjust(width) if index else name.ljust(width) for index, (name, width) in enumerate(COLUMNS))
    lines = [header, "-" * len(header)]
    for row in rows:
        cells = [
            row.backend_id + (" *" if row.unstable else ""),
            _number(row.time_to_first_token_s, 1e3, 1),
            _number(row.decode_p50_s, 1e3, 2),
            _number(row.decode_p90_s, 1e3, 2),
            _number(row.decode_tokens_per_second, 1, 1),
            _percent(row.fraction_of_bound),
            _number(row.extras.get("peak_rss_bytes"), 1e-6, 0),
            _number(row.extras.get("load_s"), 1, 1),
            _number(row.extras.get("size_on_disk_bytes"), 1e-6, 0),
            _scientific(row.extras.get("max_abs_logit_diff")),
            _percent(row.extras.get("greedy_agreement")),
            _number(row.extras.get("perplexity"), 1, 2) if row.extras.get("perplexity") is not None else _text(row.extras.get("perplexity_label")),
        ]
        lines.append(" ".join(cell.rjust(width) if index else cell.ljust(width) for index, (cell, (_, width)) in enumerate(zip(cells, COLUMNS))))
    return lines


def _int8_notes(rows: list[BackendRow]) -> list[str]:
    by_id = {row.backend_id: row for row in rows}
    notes = []
    for int8_id, fp32_id in INT8_COUNTERPARTS.items():
        int8_row, fp32_row = by_id.get(int8_id), by_id.get(fp32_id)
        if not int8_row or not fp32_row or not int8_row.decode_p50_s or not fp32_row.decode_p50_s:
            continue
        ratio = int8_row.decode_p50_s / fp32_row.decode_p50_s
        caveat = " (unstable rounds: confirm with a quieter or longer run)" if int8_row.unstable or fp32_row.unstable else ""
        if ratio > 1:
            notes.append(
                f"NOTE: {int8_id} decodes {ratio:.2f}x SLOWER than {fp32_id} on this CPU; int8 does not pay off here{caveat}."
            )
        else:
            notes.append(f"{int8_id} decodes {1 / ratio:.2f}x faster than {fp32_id}{caveat}.")
    return notes


def _median_of(entry: object) -> float | None:
    if not isinstance(entry, dict) or not entry.get("values"):
        return None
    return median(entry["values"])


def _number(value: object, scale: float, digits: int) -> str:
    if not isinstance(value, (int, float)):
        return MISSING
    return f"{value * scale:.{digits}f}"


def _percent(value: object) -> str:
    if not isinstance(value, (int, float)):
        return MISSING
    return f"{value:.0%}"


def _scientific(value: object) -> str:
    if not isinstance(value, (int, float)):
        return MISSING
    return f"{value:.1e}"


def _text(value: object) -> str:
    return str(value) if value else MISSING
