"""Evaluations: metrics with intervals, the verdict, the report, and a per-example browser."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from ...evaluate.human.results import human_verdict
from ...evaluate.verdict import format_difference, format_p, format_range, format_value
from ...store import queries, schema
from ..app import Section
from ..pages import PAGE_SIZE, NotFound, Paging, found, is_htmx, page_number, render

ITEMS_PER_PAGE = 10
# The per-example score that tells a win from a loss, by the kind of metrics (evaluate/metrics.py):
# 1 is a perfect answer for each.
SCORE_KEYS = {"label": "correct", "template": "field_accuracy", "free-text": "rougeL"}
VERDICTS = ("better", "no_difference", "worse")
router = APIRouter()


@router.get("/evals")
def evals(request: Request, verdict: str | None = None, page: int | None = None):
    paging = Paging(page_number(page), PAGE_SIZE, 0)
    rows, paging.total = queries.eval_runs_page(verdict or None, None, paging.size, paging.offset)
    return render(request, "evals.html", {"evals": [(r, headline(r)) for r in rows], "paging": paging,
                                          "verdicts": VERDICTS, "filters": {"verdict": verdict or ""}})


@router.get("/evals/{eval_id}")
def eval_run(request: Request, eval_id: str):
    run = found(queries.get_eval_run, eval_id)
    summary = run.summary or {}
    return render(request, "eval.html", {
        "r": run, "s": summary, "rows": [metric_row(row) for row in summary.get("metrics") or []],
        "human": human_verdict(run.id),
        "report": bool(run.report_path and Path(run.report_path).is_file()), **_items(run, "all", None, 1),
    })


@router.get("/evals/{eval_id}/items")
def items(request: Request, eval_id: str, view: str = "all", q: str | None = None, page: int | None = None):
    run = found(queries.get_eval_run, eval_id)
    context = {"r": run, **_items(run, view, (q or "").strip() or None, page_number(page))}
    return render(request, "_eval_items.html" if is_htmx(request) else "eval_items.html", context)


@router.get("/evals/{eval_id}/report", response_class=HTMLResponse)
def report(eval_id: str):
    run = found(queries.get_eval_run, eval_id)
    if not run.report_path or not Path(run.report_path).is_file():
        raise NotFound(f"the report of {run.id} is not there ({run.report_path})", "it was moved or deleted")
    return HTMLResponse(Path(run.report_path).read_text(encoding="utf-8"),
                        headers={"Content-Security-Policy": "script-src 'none'"})


def _items(run: schema.EvalRun, view: str, search: str | None, page: int) -> dict:
    paging = Paging(page, ITEMS_PER_PAGE, 0)
    key = SCORE_KEYS.get(run.metrics_kind)
    rows, paging.total = queries.eval_items_page(run.id, key, view, search, paging.size, paging.offset)
    views = queries.EVAL_ITEM_VIEWS if run.baseline_ref else ("all", "errors")
    return {"items": rows, "paging": paging, "view": view, "q": search or "", "views": views, "score_key": key}


def headline(run: schema.EvalRun) -> str:
    """The first metric (the one the verdict rests on) as "value (low – high)"."""
    metrics = (run.summary or {}).get("metrics") or []
    if not metrics:
        return ""
    row = metric_row(metrics[0])
    return f"{row['label']} {row['model']} ({row['model_ci']})"


def metric_row(row: dict) -> dict:
    shown = row.get("shown", "percent")

    def interval(pair) -> str:
        return f"{format_value(pair[0], shown)} – {format_value(pair[1], shown)}" if pair else ""

    if "value" in row:  # no baseline
        return {"label": row["label"], "model": format_value(row["value"], shown), "model_ci": interval(row["interval"])}
    return {
        "label": row["label"], "model": format_value(row["model"], shown), "model_ci": interval(row["model_interval"]),
        "baseline": format_value(row["baseline"], shown), "baseline_ci": interval(row["baseline_interval"]),
        "difference": format_difference(row["difference"], shown),
        "difference_ci": format_range(*row["difference_interval"], shown), "p": format_p(row["p_value"]),
        "test": row.get("test"), "significant": row.get("significant"),
    }


SECTION = Section(router, nav=("Evaluations", "/evals"))
