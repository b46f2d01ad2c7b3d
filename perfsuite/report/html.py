"""A self-contained HTML report of a saved run, and of a comparison when a base is given.

Charts are pygal SVG embedded inline with no scripts, so the page opens offline, in a
CI artifact viewer or attached to an issue, exactly as written.
"""

from __future__ import annotations

import html
import json
import logging
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pygal
from pygal.style import Style

from perfsuite.compare.gate import GateResult, Status
from perfsuite.compare.runs import TIME_METRIC, BenchmarkRecord, SavedRun
from perfsuite.compare.stats import median

logger = logging.getLogger(__name__)

REFERENCE_BACKEND = "torch-fp32"
PHASES = ("tokenize", "first-token", "generate")
STYLE = Style(background="white", plot_background="white", font_family="sans-serif", colors=(
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
))


@dataclass(frozen=True)
class Chart:
    """One figure of the report: a title, a sentence on how to read it, and the SVG."""

    title: str
    caption: str
    svg: str


def _config(title: str, y_title: str, **options) -> dict:
    return {
        "title": title,
        "y_title": y_title,
        "style": STYLE,
        "js": [],
        "width": 900,
        "height": 420,
        "x_label_rotation": 20,
        "legend_at_bottom": True,
        "print_values": False,
        "truncate_label": -1,
        **options,
    }


def _median_ms(record: BenchmarkRecord, metric: str = TIME_METRIC) -> float | None:
    values = record.metrics.get(metric)
    if values is None or not values.values:
        return None
    return median(values.values) * 1e3


def _by_group(run: SavedRun, phase: str) -> dict[str, dict[str, BenchmarkRecord]]:
    """Return ``{group: {backend: record}}`` for one phase, groups in saved order."""
    grouped: dict[str, dict[str, BenchmarkRecord]] = defaultdict(dict)
    for record in run.benchmarks.values():
        if record.setup.phase == phase:
            grouped[record.group or record.name][record.setup.backend] = record
    return grouped


def _backends(run: SavedRun) -> list[str]:
    return list(dict.fromkeys(record.setup.backend for record in run.benchmarks.values()))


def phase_chart(run: SavedRun, phase: str) -> Chart | None:
    """Bars of median time per backend, one cluster per group: backends side by side for the same work."""
    grouped = _by_group(run, phase)
    if not grouped:
        return None

    chart = pygal.Bar(**_config(f"{phase}: median time per round", "milliseconds"))
    # The title names the phase, so each label keeps only the work: "prompt 128, new 64, batch 1, threads 2".
    chart.x_labels = [group.split(": ", 1)[-1] for group in grouped]
    for backend in _backends(run):
        chart.add(backend, [_median_ms(members[backend]) if backend in members else None for members in grouped.values()])
    return Chart(f"{phase} latency", "Shorter is faster. Each cluster is one piece of work done by every backend.", chart.render(is_unicode=True))


def prompt_length_chart(run: SavedRun) -> Chart | None:
    """Median first-token latency against prompt length, one line per backend (batch 1, most threads)."""
    points: dict[str, list[tuple[int, float]]] = defaultdict(list)
    max_threads = max((record.setup.threads or 0 for record in run.benchmarks.values()), default=0)
    for record in run.benchmarks.values():
        setup = record.setup
        if setup.phase == "first-token" and setup.batch_size in (1, None) and (setup.threads or 0) == max_threads:
            value = _median_ms(record)
            if value is not None and setup.prompt_tokens:
                points[setup.backend].append((setup.prompt_tokens, value))

    if not any(len(series) > 1 for series in points.values()):
        return None

    chart = pygal.XY(**_config("first token latency against prompt length", "milliseconds", x_title="prompt tokens", dots_size=4))
    for backend, series in points.items():
        chart.add(backend, sorted(series))
    return Chart("Latency against prompt length", f"Prefill cost as the prompt grows, at {max_threads} threads.", chart.render(is_unicode=True))


def speedup_chart(run: SavedRun) -> Chart | None:
    """Chart each backend's speed relative to torch-fp32 on the same work: above 1 is faster."""
    rows: dict[str, dict[str, float]] = {}
    for phase in PHASES:
        for group, members in _by_group(run, phase).items():
            reference = members.get(REFERENCE_BACKEND)
            reference_ms = _median_ms(reference) if reference else None
            if reference_ms:
                rows[group] = {backend: reference_ms / value for backend, record in members.items() if (value := _median_ms(record))}

    if not rows:
        return None

    chart = pygal.HorizontalBar(**_config(f"speedup over {REFERENCE_BACKEND}", "times as fast", height=max(420, 40 * len(rows))))
    chart.x_labels = list(rows)
    for backend in _backends(run):
        chart.add(backend, [speeds.get(backend) for speeds in rows.values()])
    return Chart(
        f"Speedup over {REFERENCE_BACKEND}",
        f"Above 1 is faster than {REFERENCE_BACKEND} on the same work; below 1 is slower.",
        chart.render(is_unicode=True),
    )


def comparison_chart(result: GateResult) -> Chart | None:
    """Head/base median ratio of each compared metric, with its bootstrap confidence interval."""
    labels = []
    values = []
    for benchmark, metric in result.metric_results():
        comparison = metric.comparison
        if metric.status is not Status.COMPARED or comparison is None or comparison.ratio is None:
            continue
        labels.append(f"{benchmark.name} {metric.metric}")
        value: dict = {"value": comparison.ratio, "label": comparison.verdict.value}
        if comparison.interval is not None:
            value["ci"] = {"low": comparison.interval.low, "high": comparison.interval.high}
        values.append(value)

    if not values:
        return None

    lows = [value["ci"]["low"] if "ci" in value else value["value"] for value in values]
    highs = [value["ci"]["high"] if "ci" in value else value["value"] for value in values]
    # Bars grow from 1.0 (no change), so each bar's direction and length are the change itself.
    axis_range = (min(0.9, min(lows)) * 0.98, max(1.1, max(highs)) * 1.02)
    chart = pygal.HorizontalBar(
        **_config(
            "head / base median, with confidence interval", "ratio",
            height=max(420, 28 * len(values)), range=axis_range, zero=1,
        )
    )
    chart.x_labels = labels
    chart.add("head / base", values)
    return Chart(
        "Comparison with the base",
        "1.0 is unchanged. For times, above 1 is slower; for throughput metrics, above 1 is faster. "
        "Whiskers show the bootstrap confidence interval.",
        chart.render(is_unicode=True),
    )


def model_line(run: SavedRun) -> str:
    """Return a line naming the model the run measured, read from its saved files, marking synthetic weights."""
    for source in run.sources:
        try:
            document = json.loads(Path(source).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for benchmark in document.get("benchmarks", []):
            model = benchmark.get("extra_info", {}).get("model")
            if isinstance(model, dict):
                text = f"Model: {model.get('source')}:{model.get('name')}, fingerprint {model.get('fingerprint')}."
                if model.get("synthetic"):
                    text += " SYNTHETIC weights: latency stands for the real model, output quality does not."
                return text
    return "Model: not recorded in these runs."


_SCRIPT = re.compile(r"<script\b.*?</script>", re.DOTALL)


def _static_svg(svg: str) -> str:
    """Remove pygal's inline configuration script; the charts need no script to display."""
    return _SCRIPT.sub("", svg)


def render_report(run: SavedRun, comparison: GateResult | None = None) -> str:
    """Return the whole report page."""
    charts = [phase_chart(run, phase) for phase in PHASES]
    charts += [prompt_length_chart(run), speedup_chart(run)]
    if comparison is not None:
        charts.append(comparison_chart(comparison))

    sections = []
    for chart in (chart for chart in charts if chart is not None):
        sections.append(
            f"<section><h2>{html.escape(chart.title)}</h2><p>{html.escape(chart.caption)}</p>{_static_svg(chart.svg)}</section>"
        )

    sources = ", ".join(html.escape(source) for source in run.sources)
    outcome = ""
    if comparison is not None:
        outcome = f"<p><strong>Gate: {html.escape(comparison.outcome.value)}</strong>: {html.escape(comparison.reason)}</p>"
    model = html.escape(model_line(run))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>perfsuite report</title>"
        "<style>body{font-family:sans-serif;max-width:960px;margin:2em auto;color:#222}svg{max-width:100%;height:auto}</style>"
        f"</head><body><h1>perfsuite report</h1><p>Runs: {sources}</p><p>{model}</p>{outcome}{''.join(sections)}</body></html>\n"
    )


def write_report(path: Path, run: SavedRun, comparison: GateResult | None = None) -> Path:
    """Write the report page to ``path`` and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(run, comparison), encoding="utf-8")
    logger.info("Wrote the report to %s", path)
    return path
