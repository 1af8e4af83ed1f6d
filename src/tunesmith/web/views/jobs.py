"""Jobs: the list with filters; a job's page with its spec, state, events and live curves;
the stream that feeds the page; cancel and resume."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

from fastapi import APIRouter, Request
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from ...store import queries, schema
from ...train.backends.vertex import describe_state
from .. import actions
from ..app import Section
from ..pages import PAGE_SIZE, Paging, found, is_htmx, page_number, render

# Events whose data the page needs: the trained tokens per epoch (the "tokens seen" axis)
# and the overfitting watch's evidence (marked on the loss chart).
EVENTS_WITH_DATA = ("data", "stopped_early", "overfitting", "stopped", "registered")
# Steps a chart gets at most when its page opens (a chart 1,000 pixels wide shows no more);
# a long run is thinned to every k-th step plus every evaluation. Live rows come in full.
CHART_POINTS = 2000
router = APIRouter()


@router.get("/jobs")
def jobs(request: Request, status: str | None = None, backend: str | None = None, q: str | None = None,
         page: int | None = None):
    status, backend, q = status or None, backend or None, (q or "").strip() or None
    paging = Paging(page_number(page), PAGE_SIZE, 0)
    rows, paging.total = queries.jobs_page(status, backend, q, paging.size, paging.offset)
    context = {"jobs": [actions.fresh(j) for j in rows], "paging": paging, "statuses": schema.JOB_STATUSES,
               "backends": schema.JOB_BACKENDS,
               "filters": {"status": status or "", "backend": backend or "", "q": q or ""}}
    return render(request, "_jobs_table.html" if is_htmx(request) else "jobs.html", context)


@router.get("/jobs/{job_id}")
def job(request: Request, job_id: str):
    row = actions.fresh(found(queries.get_job, job_id))
    events = queries.job_events(row.id)
    metrics = chart_rows(queries.job_metric_values(row.id, max_points=CHART_POINTS))
    return render(request, "job.html", {
        "job": row, "state": status_view(row), "events": events,
        "models": [e.data["model_id"] for e in events if e.kind == "registered" and e.data],
        "chart": {"job": row.id, "columns": ["id", "step", "epoch", *schema.METRIC_COLUMNS], "rows": metrics,
                  "events": [event_view(e) for e in events if e.kind in EVENTS_WITH_DATA],
                  "after_metric": metrics[-1][0] if metrics else 0, "after_event": events[-1].id if events else 0,
                  "live": row.status not in schema.FINISHED_JOB_STATUSES},
    })


@router.get("/jobs/{job_id}/state")
def state(request: Request, job_id: str):
    """The state panel alone: the page swaps it in when its stream says the state changed."""
    row = actions.fresh(found(queries.get_job, job_id))
    return render(request, "_job_state.html", {"job": row, "state": status_view(row)})


@router.get("/jobs/{job_id}/stream")
async def stream(request: Request, job_id: str, after_metric: int = 0, after_event: int = 0):
    """Server-Sent Events: `metrics` (new rows), `events` (new timeline lines), `status` (a
    changed state), then `end` once the job has finished and everything is sent. An event's id
    is "METRIC_ID.EVENT_ID", so a reconnecting browser (Last-Event-ID) carries on where it was."""
    row = await run_in_threadpool(found, queries.get_job, job_id)
    last = request.headers.get("last-event-id", "")
    if last.count(".") == 1 and all(part.isdigit() for part in last.split(".")):
        after_metric, after_event = (int(part) for part in last.split("."))
    interval = request.app.state.config.poll_interval_s

    async def events():
        nonlocal after_metric, after_event
        shown = None
        while True:
            job, rows, new_events = await run_in_threadpool(_changes, row.id, after_metric, after_event)
            after_metric = rows[-1][0] if rows else after_metric
            after_event = new_events[-1].id if new_events else after_event
            cursor = f"{after_metric}.{after_event}"
            if rows:
                yield {"event": "metrics", "id": cursor, "data": json.dumps(rows)}
            if new_events:
                yield {"event": "events", "id": cursor, "data": json.dumps([event_view(e) for e in new_events])}
            state = status_view(job)
            if state != shown:
                shown = state
                yield {"event": "status", "id": cursor, "data": json.dumps(state)}
            if job.status in schema.FINISHED_JOB_STATUSES and not rows and not new_events:
                yield {"event": "end", "id": cursor, "data": "{}"}
                return
            await asyncio.sleep(interval)

    return EventSourceResponse(events(), ping=15, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.post("/jobs/{job_id}/cancel")
def cancel(request: Request, job_id: str):
    row = found(queries.get_job, job_id)
    job = actions.cancel(row.id)
    return render(request, "_job_state.html", {"job": job, "state": status_view(job)})


@router.post("/jobs/{job_id}/resume")
def resume(request: Request, job_id: str):
    row = found(queries.get_job, job_id)
    actions.resume(row.id)
    return render(request, "_job_state.html", {"job": queries.get_job(row.id),
                                               "state": status_view(queries.get_job(row.id))},
                  headers={"HX-Refresh": "true"})  # a fresh page opens a fresh stream


def _changes(job_id: str, after_metric: int, after_event: int) -> tuple[schema.Job, list[tuple], list[schema.JobEvent]]:
    return (actions.fresh(queries.get_job(job_id)), chart_rows(queries.job_metric_values(job_id, after_metric, max_points=CHART_POINTS)),
            queries.job_events(job_id, after_event))


def chart_rows(rows: list[tuple]) -> list[list]:
    """Rows for JSON: a NaN or infinite loss (the loss guard's reason to stop) becomes null."""
    return [[v if not isinstance(v, float) or math.isfinite(v) else None for v in row] for row in rows]


def status_view(job: schema.Job) -> dict[str, Any]:
    """The state a person reads: status, why it stopped, and a managed job's own state and sub-state."""
    remote = None
    if job.remote_state:
        state, _, sub_state = job.remote_state.partition("/")
        remote = describe_state(state, sub_state or None)
    return {"status": job.status, "stop_reason": job.stop_reason, "remote": remote, "error": job.error,
            "can_cancel": job.status in ("queued", "running"),
            "can_resume": job.backend == "local" and job.status in ("failed", "cancelled")}


def event_view(event: schema.JobEvent) -> dict[str, Any]:
    return {"id": event.id, "time": event.time.isoformat(timespec="seconds"), "kind": event.kind,
            "message": event.message, "data": event.data if event.kind in EVENTS_WITH_DATA else None}


SECTION = Section(router, nav=("Jobs", "/jobs"))
