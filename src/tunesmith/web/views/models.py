"""Models: the registry with lineage and evaluations; stage and family changes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from ...store import queries, schema
from ..app import Section
from ..pages import PAGE_SIZE, Paging, form_fields, found, is_htmx, page_number, render

# The spec fields that say how a model was trained (the rest is in the job's full spec).
HYPERPARAMETERS = ("epochs", "max_steps", "learning_rate", "batch_size", "gradient_accumulation", "max_seq_length",
                   "warmup_ratio", "weight_decay", "lora", "precision", "seed")
router = APIRouter()


@router.get("/models")
def models(request: Request, stage: str | None = None, q: str | None = None, page: int | None = None):
    stage, q = stage or None, (q or "").strip() or None
    paging = Paging(page_number(page), PAGE_SIZE, 0)
    rows, paging.total = queries.models_page(stage, q, paging.size, paging.offset)
    context = {"models": rows, "paging": paging, "stages": schema.MODEL_STAGES,
               "filters": {"stage": stage or "", "q": q or ""}, "family": queries.model_family}
    return render(request, "_models_table.html" if is_htmx(request) else "models.html", context)


@router.get("/models/{model_id}")
def model(request: Request, model_id: str):
    row = found(queries.get_model, model_id)
    evals, _ = queries.eval_runs_page(model_id=row.id, limit=100)
    return render(request, "model.html", {
        **_stage_context(row), "evals": evals,
        "hyperparameters": {k: row.spec[k] for k in HYPERPARAMETERS if row.spec.get(k) is not None},
    })


@router.post("/models/{model_id}/stage")
async def stage(request: Request, model_id: str):
    return await _change(request, model_id, queries.set_model_stage, "stage")


@router.post("/models/{model_id}/family")
async def family(request: Request, model_id: str):
    return await _change(request, model_id, queries.set_model_family, "family")


async def _change(request: Request, model_id: str, setter, field: str):
    """Set one field of a model from the posted form (the store enforces the rules) and show the result."""
    fields = await form_fields(request)
    row = await run_in_threadpool(found, queries.get_model, model_id)
    changed = await run_in_threadpool(setter, row.id, fields.get(field, ""))
    return render(request, "_model_stage.html", {**_stage_context(changed), "changed": True})


def _stage_context(row: schema.ModelVersion) -> dict:
    return {"m": row, "stages": schema.MODEL_STAGES, "family": queries.model_family(row)}


SECTION = Section(router, nav=("Models", "/models"))
