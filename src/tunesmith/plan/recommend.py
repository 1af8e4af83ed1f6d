"""The guide's decision table, filled in for one case, and the path it points to.

Rows are the guide's criteria; each cell says what the path means for this plan, with its
numbers. Requirements (`--require`) rule paths out; among those left, the cheapest feasible
option wins, and the table says what is traded for it."""

from __future__ import annotations

from pydantic import BaseModel

from ..errors import BadInputError
from .hardware import THIS_MACHINE

# What each requirement rules out, and why (said in the recommendation).
REQUIREMENTS = {
    "data-sovereignty": ("managed", "the training data must stay on infrastructure you control"),
    "model-flexibility": ("managed", "you need open weights you can download, inspect, quantize and serve anywhere"),
    "no-infrastructure": ("self-hosted", "nobody is to run GPUs, drivers or training code"),
}


class DecisionRow(BaseModel):
    criterion: str
    managed: str
    self_hosted: str


class Recommendation(BaseModel):
    path: str | None  # "managed" | "self-hosted" | None when nothing is feasible
    option: str | None  # e.g. "vertex/gemini-2.5-flash-lite" or "lora on rtx-4090 (community cloud)"
    usd_per_run: float | None
    reason: str
    ruled_out: dict[str, str]  # path -> why


def check_requirements(require: list[str]) -> None:
    unknown = [r for r in require if r not in REQUIREMENTS]
    if unknown:
        raise BadInputError(f"unknown requirement(s) {', '.join(unknown)}", f"choose from {', '.join(REQUIREMENTS)}")


def decision_table(managed_best, self_best, model: str) -> list[DecisionRow]:
    """`managed_best` (a planner.ManagedOption) and `self_best` (a planner.SelfHostedBest) are the
    cheapest option on each path, or None."""
    managed_cost = f"${managed_best.usd:,.2f} a run ({managed_best.target}), known before it starts: tokens x epochs x price" \
        if managed_best else "no managed target priced"
    self_cost = (f"${self_best.usd:,.2f} a run ({self_best.method} on {self_best.gpu}) if it runs at the assumed "
                 "utilization; retries and idle GPUs add to it") if self_best else "no GPU in the list fits"
    hours = f"about {self_best.time_s / 3600:,.1f} h of training" if self_best else "no GPU that fits"
    first_tune = (f"now: this machine can run it, {hours}" if self_best and self_best.gpu == THIS_MACHINE
                  else f"days: get a GPU, install drivers and the stack, then {hours}")
    return [
        DecisionRow(criterion="time to first tune",
                    managed="hours: upload the exported JSONL to Cloud Storage and start a job; the service queues and trains",
                    self_hosted=first_tune),
        DecisionRow(criterion="infrastructure management", managed="none: Google runs the accelerators",
                    self_hosted="yours: GPUs, CUDA drivers, the training stack, checkpoints, serving"),
        DecisionRow(criterion="data sovereignty",
                    managed="the data goes to Google Cloud (the region you choose), under its data-use terms",
                    self_hosted="the data stays on machines you control"),
        DecisionRow(criterion="cost predictability", managed=managed_cost, self_hosted=self_cost),
        DecisionRow(criterion="model flexibility",
                    managed="Gemini models only; the tuned model is served by the service, weights are not yours",
                    self_hosted=f"any open-weight model ({model} here); full, LoRA or QLoRA; the weights are yours"),
        DecisionRow(criterion="skills",
                    managed="data preparation and the cloud console or SDK",
                    self_hosted="ML engineering: PyTorch, GPU memory, distributed training, serving"),
    ]


def recommend(managed_best, self_best, require: list[str]) -> Recommendation:
    ruled_out = {path: why for req, (path, why) in REQUIREMENTS.items() if req in require}
    candidates = []
    if "managed" not in ruled_out and managed_best:
        candidates.append(("managed", managed_best.target, managed_best.usd))
    if "self-hosted" not in ruled_out and self_best:
        candidates.append(("self-hosted", f"{self_best.method} on {self_best.gpu} ({self_best.provider})", self_best.usd))
    if not candidates:
        return Recommendation(path=None, option=None, usd_per_run=None, ruled_out=ruled_out,
                              reason="no path is left: the requirements rule out one and nothing feasible remains "
                                     "on the other (try a smaller model, QLoRA, a shorter --seq-len or a larger GPU)")
    path, option, usd = min(candidates, key=lambda c: c[2])
    other = [c for c in candidates if c[0] != path]
    reason = f"the cheapest feasible option: {option} at ${usd:,.2f} a run"
    if other:
        reason += f" (the cheapest {other[0][0]} option, {other[0][1]}, costs ${other[0][2]:,.2f})"
    if ruled_out:
        reason += "; ruled out: " + "; ".join(f"{p} ({why})" for p, why in ruled_out.items())
    return Recommendation(path=path, option=option, usd_per_run=usd, reason=reason, ruled_out=ruled_out)
