"""The overview: recent jobs, models and evaluations, with their states."""

from __future__ import annotations

from fastapi import APIRouter, Request

from ...store import queries, schema
from ..app import Section
from ..pages import render

RECENT = 8
router = APIRouter()


@router.get("/")
def overview(request: Request):
    jobs, job_total = queries.jobs_page(limit=RECENT)
    models, model_total = queries.models_page(limit=RECENT)
    evals, eval_total = queries.eval_runs_page(limit=RECENT)
    counts = queries.job_status_counts()
    return render(request, "overview.html", {
        "jobs": jobs, "models": models, "evals": evals,
        "totals": {"jobs": job_total, "models": model_total, "evals": eval_total,
                   "datasets": queries.list_dataset_versions(limit=1)[1]},
        "status_counts": [(s, counts.get(s, 0)) for s in schema.JOB_STATUSES],
        "production": queries.models_page(stage="production", limit=20)[0],
    })


SECTION = Section(router, nav=("Overview", "/"))
