"""Deployments: what each name serves, the running rollout and the gate's sentence, the history
and the decisions with their evidence."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from ...rollout.gate import gate, model_label
from ...store import deployments as store
from ..app import Section
from ..pages import found, render

router = APIRouter()


@router.get("/deployments")
def deployments(request: Request):
    rows = store.list_deployments()
    return render(request, "deployments.html", {"deployments": rows, "label": model_label})


@router.get("/deployments/{name}")
async def deployment(request: Request, name: str):
    row = found(store.get_deployment, name)
    result = await run_in_threadpool(gate, name)  # scores the rollout's labeled answers: off the event loop
    return render(request, "deployment.html", {
        "deployment": row, "gate": result, "events": store.deployment_events(name)[::-1],
        "decisions": store.list_decisions(name)[::-1], "counts": store.request_counts(name), "label": model_label,
    })


SECTION = Section(router, nav=("Deployments", "/deployments"))
