"""Monitor: past monitor runs, and each run's windows of drift and quality over time with its answer."""

from __future__ import annotations

from fastapi import APIRouter, Request

from ...monitor.history import get_run, list_runs
from ...monitor.report import window_series
from ..app import Section
from ..pages import found, render

router = APIRouter()


@router.get("/monitor")
def runs(request: Request, subject: str | None = None):
    subject = (subject or "").strip() or None
    all_runs = list_runs()
    subjects = sorted({r.get("subject", "") for r in all_runs})
    shown = [r for r in all_runs if subject is None or r.get("subject") == subject]
    return render(request, "monitor_runs.html", {"runs": shown, "subjects": subjects, "subject": subject or ""})


@router.get("/monitor/{run_id}")
def run(request: Request, run_id: str):
    summary = found(get_run, run_id)
    labels, series = window_series(summary)
    chart = {"labels": labels, "ends": [w["end"] for w in summary["windows"]], "series": series}
    return render(request, "monitor_run.html", {"s": summary, "chart": chart})


SECTION = Section(router, nav=("Monitor", "/monitor"))
