"""The evaluation report: one self-contained HTML page, in the data report's style.

The verdict first; then the metric table with intervals, per-class bars and confusion
matrices (label-like outputs), the training curves of the model's job, the largest wins and
the regressions side by side, and the lineage. The stylesheet is the data report's own
(data/templates/report.html), read from it so both pages look alike; charts are inline SVG
(data/report_html.py's bar chart, and a line chart drawn here); nothing is fetched."""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files

from markupsafe import Markup, escape

from ..data.report_html import SMALL_CHART_WIDTH, bar_chart_svg
from ..lazy import jinja2
from ..store import queries
from .verdict import format_difference, format_p, format_range, format_value

BANDS = {"better": "pass", "no_difference": "warn", "worse": "fail", None: "warn"}
CURVE_WIDTH, CURVE_HEIGHT, CURVE_PAD = 960, 240, 44
CURVE_COLOURS = {"train_loss": "#4a7bd0", "eval_loss": "#dc8a0e"}
LINEAGE_FIELDS = ("id", "name", "stage", "base_model", "method", "dataset_version", "job_id", "stop_reason",
                  "adapter_path", "merged_path", "remote_endpoint", "created_at")
SPEC_FIELDS = ("epochs", "max_steps", "learning_rate", "batch_size", "lora", "seed")


def render_report(summary: dict, model=None) -> str:
    """The page for a summary (summary.json); `model`, a registered ModelVersion, adds the
    training curves and the lineage."""
    return _environment().get_template("eval_report.html").render(page=_page(summary, model), css=_data_report_css())


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("tunesmith.evaluate", "templates"), autoescape=True,
                              trim_blocks=True, lstrip_blocks=True)


@lru_cache(maxsize=1)
def _data_report_css() -> Markup:
    """The data report's stylesheet (data/templates/report.css), so both pages look alike."""
    return Markup((files("tunesmith.data") / "templates" / "report.css").read_text(encoding="utf-8"))


def _page(summary: dict, model) -> dict:
    return {
        "s": summary,
        "band": BANDS.get(summary.get("verdict"), "warn"),
        "rows": [_metric_row(row) for row in summary.get("metrics") or []],
        "classes": _classes(summary.get("per_class") or {}),
        "curves": _curves(model),
        "lineage": _lineage(model),
    }


def _metric_row(row: dict) -> dict:
    shown = row.get("shown", "percent")

    def interval(pair: list[float]) -> str:
        return f"{format_value(pair[0], shown)} – {format_value(pair[1], shown)}"

    if "value" in row:  # no baseline
        return {"label": row["label"], "model": format_value(row["value"], shown), "model_ci": interval(row["interval"])}
    return {
        "label": row["label"],
        "model": format_value(row["model"], shown), "model_ci": interval(row["model_interval"]),
        "baseline": format_value(row["baseline"], shown), "baseline_ci": interval(row["baseline_interval"]),
        "difference": format_difference(row["difference"], shown),
        "difference_ci": format_range(*row["difference_interval"], shown),
        "p": format_p(row["p_value"]), "test": row["test"], "significant": row["significant"],
    }


def _classes(per_class: dict) -> list[dict]:
    out = []
    for role, detail in per_class.items():
        bars = [(c["class"], round(c["f1"], 3)) for c in detail["classes"]]
        confusion = detail["confusion"]
        largest = max((max(r) for r in confusion["matrix"]), default=0) or 1
        out.append({"role": role, "chart": bar_chart_svg(bars, f"F1 per class ({role})", SMALL_CHART_WIDTH),
                    "rows": detail["classes"], "labels": confusion["labels"],
                    "matrix": [[(n, round(n / largest, 2)) for n in r] for r in confusion["matrix"]]})
    return out


def _curves(model) -> Markup | None:
    if model is None or not model.job_id:
        return None

    rows = queries.job_metrics(model.job_id)
    series = {name: [(r.step, getattr(r, name)) for r in rows if getattr(r, name) is not None]
              for name in CURVE_COLOURS}
    return line_chart_svg({k: v for k, v in series.items() if v}, "Training curves: loss by step")


def line_chart_svg(series: dict[str, list[tuple[float, float]]], title: str) -> Markup | None:
    """Lines over a shared x axis, one per named series of (x, y); None without data."""
    points = [p for values in series.values() for p in values]
    if not points:
        return None
    (x0, x1), (y0, y1) = [(min(v), max(v)) for v in zip(*points)]
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)
    left, bottom, right, top = CURVE_PAD, CURVE_HEIGHT - CURVE_PAD, CURVE_WIDTH - 12, 12

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (right - left)

    def sy(y: float) -> float:
        return bottom - (y - y0) / (y1 - y0) * (bottom - top)

    parts = []
    for fraction in (0, 0.5, 1):
        y = y0 + fraction * (y1 - y0)
        parts.append(f'<line class="grid" x1="{left}" x2="{right}" y1="{sy(y):.1f}" y2="{sy(y):.1f}"/>'
                     f'<text class="axis" x="{left - 6}" y="{sy(y) + 4:.1f}" text-anchor="end">{y:.2f}</text>')
    for x in (x0, (x0 + x1) / 2, x1):
        parts.append(f'<text class="axis" x="{sx(x):.1f}" y="{bottom + 16}" text-anchor="middle">{x:.0f}</text>')
    for i, (name, values) in enumerate(series.items()):
        colour = CURVE_COLOURS.get(name, "#59636e")
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in values)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"><title>{escape(name)}</title></polyline>')
        parts.append(f'<text class="value" x="{left + 10 + i * 120}" y="{CURVE_HEIGHT - 6}" fill="{colour}">■ {escape(name)}</text>')
    parts.append(f'<text class="axis" x="{(left + right) / 2:.0f}" y="{CURVE_HEIGHT - 6}" text-anchor="middle">step</text>')
    return Markup(f'<svg class="chart" viewBox="0 0 {CURVE_WIDTH} {CURVE_HEIGHT}" width="{CURVE_WIDTH}" '
                  f'height="{CURVE_HEIGHT}" role="img" aria-label="{escape(title)}">{"".join(parts)}</svg>')


def _lineage(model) -> list[tuple[str, str]]:
    if model is None:
        return []
    data = model.to_dict()
    rows = [(k, str(data[k])) for k in LINEAGE_FIELDS if data.get(k) is not None]
    spec = data.get("spec") or {}
    rows += [(f"spec.{k}", str(spec[k])) for k in SPEC_FIELDS if spec.get(k) is not None]
    best = data.get("best_metrics") or {}
    rows += [(f"best {k}", f"{v:.4f}" if isinstance(v, float) else str(v)) for k, v in best.items()]
    return rows
