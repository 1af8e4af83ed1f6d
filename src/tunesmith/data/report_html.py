"""The data report as one self-contained HTML page: inline CSS, charts drawn here as inline
SVG, nothing fetched from the network, so the file can be mailed or attached to an issue.

`render_html` takes the JSON report that `tunesmith data check` writes (see report.py).
Any key may be missing or empty; the page then leaves that part out or says there is none."""

from __future__ import annotations

from collections import Counter
from functools import lru_cache
from typing import Any

from markupsafe import Markup, escape

from ..lazy import jinja2

SEVERITIES = ("error", "warning", "info")
ROLES = ("system", "user", "model", "total")
MAX_LABEL_BARS = 40  # more labels than this are summed up as "N more"

# Chart geometry, in pixels (a chart shrinks to fit a narrower card, never grows).
CHART_WIDTH = 960  # the content width of a full-width card
SMALL_CHART_WIDTH = 440  # a chart in a half-width card
BAR_HEIGHT = 18
BAR_GAP = 6
LABEL_WIDTH = 180
VALUE_WIDTH = 70
CHAR_WIDTH = 7  # an average character at 12px, to shorten labels that would not fit
HISTOGRAM_HEIGHT = 220
AXIS_SPACE = 34  # below the histogram bars: tick labels and the axis title
Y_AXIS_SPACE = 48  # left of the histogram bars: the count labels
RIGHT_MARGIN = 12
MAX_TICKS = 10


def render_html(report: dict) -> str:
    return _environment().get_template("report.html").render(page=_page(report))


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("tunesmith.data", "templates"), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = _number
    return env


# ---- the page's content, from the report ----------------------------------------------


def _page(report: dict) -> dict:
    stats = report.get("stats") or {}
    findings = sorted(report.get("findings") or [], key=_severity_rank)
    summary = _summary(report, findings)
    return {
        "tool": report.get("tool") or "tunesmith",
        "created_at": report.get("created_at"),
        "inputs": report.get("inputs") or [],
        "target": report.get("target") or {},
        "token_method": (report.get("target") or {}).get("token_method") or (stats.get("tokens") or {}).get("method"),
        "summary": summary,
        "verdict": _verdict(summary),
        "splits_chart": bar_chart_svg(list((stats.get("examples_per_split") or {}).items()), "Examples per split", SMALL_CHART_WIDTH),
        "labels": _labels(stats),
        "tokens": _tokens(stats.get("tokens") or {}),
        "timestamps": stats.get("timestamps") or {},
        "findings": [_finding(f, i) for i, f in enumerate(findings)],
    }


def _severity_rank(finding: dict) -> tuple[int, int]:
    """Most severe first, then the most widespread (as the terminal report orders them)."""
    severity = finding.get("severity")
    rank = SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)
    return rank, -(finding.get("count") or 0)


def _summary(report: dict, findings: list[dict]) -> dict:
    """The report's summary; counts it lacks are taken from the findings and the inputs."""
    given = report.get("summary") or {}
    by_severity = Counter(f.get("severity") for f in findings)
    inputs = report.get("inputs") or []
    derived = {
        "examples": sum(i.get("examples") or 0 for i in inputs),
        "unreadable_lines": sum(i.get("unreadable") or 0 for i in inputs),
        "errors": by_severity["error"],
        "warnings": by_severity["warning"],
        "infos": by_severity["info"],
    }
    return {key: given[key] if given.get(key) is not None else value for key, value in derived.items()}


def _verdict(summary: dict) -> dict:
    if summary["errors"]:
        return {"status": "fail", "text": "Errors found: fix them before tuning"}
    if summary["warnings"] or summary["unreadable_lines"]:
        return {"status": "warn", "text": "No errors, but look at the warnings"}
    return {"status": "pass", "text": "No errors: the data looks ready for tuning"}


def _labels(stats: dict) -> dict:
    counts = {str(label): n for label, n in (stats.get("label_distribution") or {}).items() if isinstance(n, (int, float))}
    distribution = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    shown, rest = distribution[:MAX_LABEL_BARS], distribution[MAX_LABEL_BARS:]
    per_split = {split: labels or {} for split, labels in (stats.get("label_distribution_per_split") or {}).items()}
    return {
        "source": stats.get("label_source"),
        "count": len(distribution),
        "chart": bar_chart_svg(shown, "Examples per label"),
        "more": {"labels": len(rest), "examples": sum(n for _, n in rest)},
        "splits": list(per_split),
        "per_split": [(label, [per_split[s].get(label, 0) for s in per_split]) for label, _ in shown],
    }


def _tokens(tokens: dict) -> dict:
    per_role = tokens.get("per_role") or {}
    roles = [r for r in ROLES if r in per_role] + [r for r in per_role if r not in ROLES]
    histogram = tokens.get("histogram") or {}
    return {
        "rows": [(role, per_role[role] or {}) for role in roles],
        "chart": histogram_svg(histogram.get("edges") or [], histogram.get("counts") or []),
    }


def _finding(finding: dict, index: int) -> dict:
    locations = [_location(loc) for loc in finding.get("locations") or []]
    examples = [str(e) for e in finding.get("examples") or []]
    severity = finding.get("severity")
    return {
        "anchor": f"finding-{index + 1}",
        "code": finding.get("code") or "finding",
        "severity": severity if severity in SEVERITIES else "info",
        "message": finding.get("message") or "",
        "hint": finding.get("hint") or "",
        "count": finding.get("count") if finding.get("count") is not None else len(locations) or len(examples),
        # Thousands of locations render as one block of text, not thousands of elements.
        "locations": "\n".join(locations),
        "location_count": len(locations),
        "examples": " ".join(examples),  # ids wrap to the width of the block
        "example_count": len(examples),
    }


def _location(location: Any) -> str:
    if not isinstance(location, dict):
        return str(location)
    file, line = location.get("file") or "", location.get("line")
    return f"{file}:{line}" if line else file


def _number(value: Any) -> str:
    """Thousands separated; a float with one decimal; "–" for nothing."""
    if value is None or value == "":
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() else f"{value:,.1f}"
    return str(value)


# ---- charts -----------------------------------------------------------------------------


def bar_chart_svg(items: list[tuple[Any, Any]], title: str, width: int = CHART_WIDTH) -> Markup | None:
    """Horizontal bars, one per (label, value), in the order given; None without data."""
    items = [(str(label), value) for label, value in items if isinstance(value, (int, float))]
    if not items:
        return None
    largest = max(value for _, value in items) or 1
    bar_space = width - LABEL_WIDTH - VALUE_WIDTH
    height = len(items) * (BAR_HEIGHT + BAR_GAP) + BAR_GAP
    rows = []
    for i, (label, value) in enumerate(items):
        y = BAR_GAP + i * (BAR_HEIGHT + BAR_GAP)
        length = max(value / largest * bar_space, 1 if value else 0)
        rows.append(
            f'<g><title>{escape(label)}: {_number(value)}</title>'
            f'<text class="axis" x="{LABEL_WIDTH - 8}" y="{y + BAR_HEIGHT - 5}" text-anchor="end">{escape(_shorten(label))}</text>'
            f'<rect class="bar" x="{LABEL_WIDTH}" y="{y}" width="{length:.1f}" height="{BAR_HEIGHT}" rx="2"/>'
            f'<text class="value" x="{LABEL_WIDTH + length + 6:.1f}" y="{y + BAR_HEIGHT - 5}">{_number(value)}</text></g>'
        )
    return _svg(title, width, height, "".join(rows))


def histogram_svg(edges: list[float], counts: list[int], title: str = "Tokens per example") -> Markup | None:
    """Vertical bars over consecutive bins [edges[i], edges[i+1]); None without data."""
    bins = min(len(counts), len(edges) - 1)
    if bins <= 0:
        return None
    counts, edges = counts[:bins], edges[: bins + 1]
    tallest = max(counts) or 1
    plot_height = HISTOGRAM_HEIGHT - AXIS_SPACE
    left, bin_width = Y_AXIS_SPACE, (CHART_WIDTH - Y_AXIS_SPACE - RIGHT_MARGIN) / bins
    top = 10  # the tallest bar reaches this far down from the top
    parts = []
    for fraction in (0, 0.5, 1):
        y = plot_height - fraction * (plot_height - top)
        parts.append(f'<line class="grid" x1="{left}" x2="{CHART_WIDTH - RIGHT_MARGIN}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="axis" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_number(round(tallest * fraction))}</text>')
    for i, count in enumerate(counts):
        bar = count / tallest * (plot_height - top)
        x = left + i * bin_width
        parts.append(
            f'<g><title>{_number(edges[i])}–{_number(edges[i + 1])} tokens: {_number(count)} examples</title>'
            f'<rect class="bar" x="{x + 1:.1f}" y="{plot_height - bar:.1f}" width="{max(bin_width - 2, 1):.1f}" height="{bar:.1f}"/></g>'
        )
    step = max(1, -(-bins // MAX_TICKS))  # ceil: at most MAX_TICKS labels under the axis
    for i in range(0, bins + 1, step):
        tick = round(edges[i]) if edges[-1] - edges[0] >= bins else edges[i]  # whole tokens unless bins are narrower
        parts.append(f'<text class="axis" x="{left + i * bin_width:.1f}" y="{plot_height + 15}" text-anchor="middle">{_number(tick)}</text>')
    parts.append(f'<text class="axis" x="{left + (CHART_WIDTH - left) / 2:.1f}" y="{HISTOGRAM_HEIGHT - 2}" text-anchor="middle">tokens per example</text>')
    return _svg(title, CHART_WIDTH, HISTOGRAM_HEIGHT, "".join(parts))


def _svg(title: str, width: int, height: int, body: str) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img"'
        f' aria-label="{escape(title)}">{body}</svg>'
    )


def _shorten(label: str) -> str:
    fits = (LABEL_WIDTH - 12) // CHAR_WIDTH
    return label if len(label) <= fits else label[: fits - 1] + "…"
