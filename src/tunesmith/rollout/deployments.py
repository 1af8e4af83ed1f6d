"""Deployments: a stable name routed to a production model and, while a rollout runs, a candidate.

    create NAME --production M      the name serves M
    start NAME --candidate C        shadow (C answers a copy of each request off the caller's path)
                                    or ab (a share of subjects gets C's answers)
    promote / rollback / stop       end the rollout; promote and rollback are decisions, recorded
                                    with their evidence and reflected in the registry's stages

Every change is one transaction that also writes a history line, so a failed change leaves
nothing behind, and a running server (which re-reads deployments every few seconds) sees
either the old deployment or the new one.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any

from ..errors import BadInputError
from ..registry.resolver import resolve
from ..store import db, deployments, queries, schema
from .sequential import DEFAULT_ALPHA, DEFAULT_PLANNED_N

METRICS = ("auto", "answer", "score", "thumbs")
# Guardrails and their default tolerances: how much worse the candidate may be before it counts as harm.
GUARDRAILS = {
    "latency_p95": 0.20,  # relative: the candidate's p95 latency up to 20% above production's
    "error_rate": 0.01,  # absolute: one more failed request in a hundred
    "format": 0.02,  # absolute: invalid-format rate (the production answers' dominant template)
    "length": 0.50,  # relative: mean output tokens up to 50% above production's
}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class RolloutSettings:
    metric: str = "auto"
    guardrails: dict[str, float] | None = None  # None: every guardrail at its default tolerance
    delta: float = 0.0  # the tolerated quality loss
    alpha: float = DEFAULT_ALPHA
    planned_n: int = DEFAULT_PLANNED_N
    auto: bool = False  # the server acts on the gate by itself

    def checked(self) -> dict[str, Any]:
        if self.metric not in METRICS:
            raise BadInputError(f"unknown metric {self.metric!r}", f"use one of: {', '.join(METRICS)}")
        guardrails = dict(GUARDRAILS) if self.guardrails is None else dict(self.guardrails)
        for name, tolerance in guardrails.items():
            if name not in GUARDRAILS:
                raise BadInputError(f"unknown guardrail {name!r}", f"use one of: {', '.join(GUARDRAILS)}")
            if not tolerance >= 0:
                raise BadInputError(f"guardrail {name}: the tolerance must be 0 or more (got {tolerance})")
        if not 0 <= self.delta:
            raise BadInputError(f"the tolerated loss δ must be 0 or more (got {self.delta})")
        if not 0 < self.alpha < 0.5:
            raise BadInputError(f"α must be between 0 and 0.5 (got {self.alpha})")
        if self.planned_n < 1:
            raise BadInputError(f"the planned size must be at least 1 (got {self.planned_n})")
        return {"metric": self.metric, "guardrails": guardrails, "delta": self.delta, "alpha": self.alpha,
                "planned_n": self.planned_n, "auto": self.auto}


def parse_guardrails(items: list[str] | None) -> dict[str, float] | None:
    """["latency_p95=0.3", "error_rate"] -> {"latency_p95": 0.3, "error_rate": 0.01}; None for none given."""
    if not items:
        return None
    guardrails = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if name not in GUARDRAILS:
            raise BadInputError(f"unknown guardrail {name!r}", f"use one of: {', '.join(GUARDRAILS)}, as NAME or NAME=TOLERANCE")
        try:
            guardrails[name] = float(value) if sep else GUARDRAILS[name]
        except ValueError:
            raise BadInputError(f"--guardrail {item!r}: the tolerance is not a number", "e.g. --guardrail latency_p95=0.2") from None
    return guardrails


def model_ref(ref: str) -> str:
    """What a deployment stores for a model: the registry id of a registered model, else the base
    model reference as given. Unknown models are refused (BadInputError)."""
    resolved = resolve(ref)
    return resolved.version.id if resolved.version is not None else ref


def create_deployment(name: str, production: str) -> schema.Deployment:
    if not _NAME.fullmatch(name or "") or name.startswith("mv-"):
        raise BadInputError(f"{name!r} cannot name a deployment",
                            "use letters, digits, '.', '_' and '-' (at most 64), not starting with 'mv-'")
    ref = model_ref(production)
    with db.session_scope() as s:
        if deployments.find_deployment(name, session=s) is not None:
            raise BadInputError(f"the deployment {name!r} exists already",
                                f"`tunesmith rollout start {name} --candidate MODEL` tries a new model on it")
        deployment = schema.Deployment(name=name, production=ref, percent=0.0,
                                       settings={"seed": secrets.token_hex(8)}, status="idle")
        s.add(deployment)
        deployments.add_deployment_event(s, deployment, "create", f"created, serving {ref}")
        return deployment


def start_rollout(name: str, candidate: str, mode: str, percent: float | None = None,
                  settings: RolloutSettings | None = None) -> schema.Deployment:
    """Start trying `candidate` on a deployment: mode shadow (percent: share of requests mirrored,
    default 100) or ab (percent: share of subjects on the candidate, default 10)."""
    if mode not in schema.DEPLOYMENT_MODES:
        raise BadInputError(f"unknown mode {mode!r}", f"use one of: {', '.join(schema.DEPLOYMENT_MODES)}")
    percent = (100.0 if mode == "shadow" else 10.0) if percent is None else float(percent)
    if not 0 <= percent <= 100:
        raise BadInputError(f"--percent must be from 0 to 100 (got {percent:g})")
    checked = (settings or RolloutSettings()).checked()
    ref = model_ref(candidate)
    with db.session_scope() as s:
        deployment = deployments.get_deployment(name, session=s)
        if deployment.status == "running":
            raise BadInputError(f"a rollout of {deployment.candidate} is already running on {name!r}",
                                f"promote, roll back or stop it first (`tunesmith rollout stop {name}`)")
        if ref == deployment.production:
            raise BadInputError(f"{ref} is already {name!r}'s production model", "start a rollout of another model")
        deployment.candidate, deployment.mode, deployment.percent = ref, mode, percent
        deployment.settings = {"seed": deployment.settings.get("seed") or secrets.token_hex(8), **checked}
        deployment.status = "running"
        deployment.rollout_id = _fresh_rollout_id()
        deployments.add_deployment_event(s, deployment, "start", f"{mode} rollout of {ref} ({percent:g}%)")
        return deployment


def stop_rollout(name: str) -> schema.Deployment:
    """End the rollout without a decision: the name serves production only."""
    with db.session_scope() as s:
        deployment = _running(s, name)
        candidate = deployment.candidate
        _end(deployment)
        deployments.add_deployment_event(s, deployment, "stop", f"stopped the rollout of {candidate}")
        return deployment


def promote(name: str, *, sentence: str | None = None, evidence: dict[str, Any] | None = None,
            automatic: bool = False) -> schema.RolloutDecision:
    """The candidate becomes the production model: of the deployment, and in the registry (the old
    production model moves to staging, the candidate to production)."""
    with db.session_scope() as s:
        deployment = _running(s, name)
        decision = _decide(s, deployment, "promote", sentence or f"promoted {deployment.candidate} by hand",
                           evidence, automatic)
        old, new = _version(s, deployment.production), _version(s, deployment.candidate)
        if old is not None and old.stage == "production":
            queries.set_model_stage(old.id, "staging", session=s)
        if new is not None:
            queries.set_model_stage(new.id, "production", session=s)  # refused if another model of its family is there
        deployment.production = deployment.candidate
        _end(deployment)
        deployments.add_deployment_event(s, deployment, "promote", decision.sentence)
        return decision


def rollback(name: str, *, sentence: str | None = None, evidence: dict[str, Any] | None = None,
             automatic: bool = False) -> schema.RolloutDecision:
    """Drop the candidate: the name serves production only, and the candidate is archived in the registry."""
    with db.session_scope() as s:
        deployment = _running(s, name)
        decision = _decide(s, deployment, "rollback", sentence or f"rolled back {deployment.candidate} by hand",
                           evidence, automatic)
        new = _version(s, deployment.candidate)
        if new is not None and new.stage != "production":
            queries.set_model_stage(new.id, "archived", session=s)
        _end(deployment)
        deployments.add_deployment_event(s, deployment, "rollback", decision.sentence)
        return decision


def assign_arm(seed: str, rollout_id: str, subject: str, percent: float) -> str:
    """"candidate" or "production" for a subject: a hash of the seed, the rollout and the subject,
    so a subject stays on one side for the whole rollout, on every replica."""
    digest = hashlib.sha256(f"{seed}:{rollout_id}:{subject}".encode()).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64  # uniform in [0, 1)
    return "candidate" if position < percent / 100 else "production"


def mirrored(seed: str, request_id: str, percent: float) -> bool:
    """Whether shadow mode sends this request to the candidate too."""
    return percent >= 100 or assign_arm(seed, "shadow", request_id, percent) == "candidate"


def _fresh_rollout_id() -> str:
    return f"ro-{queries.new_id('x')[2:]}"


def _running(s, name: str) -> schema.Deployment:
    deployment = deployments.get_deployment(name, session=s)
    if deployment.status != "running":
        raise BadInputError(f"no rollout is running on {name!r}",
                            f"`tunesmith rollout start {name} --candidate MODEL --mode shadow|ab` starts one")
    return deployment


def _end(deployment: schema.Deployment) -> None:
    deployment.candidate, deployment.mode, deployment.percent, deployment.status = None, None, 0.0, "idle"


def _version(s, ref: str | None) -> schema.ModelVersion | None:
    if ref is None:
        return None
    try:
        return queries.get_model(ref, session=s)
    except BadInputError:
        return None  # a base model: no registry row, no stage


def _decide(s, deployment: schema.Deployment, decision: str, sentence: str, evidence: dict[str, Any] | None,
            automatic: bool) -> schema.RolloutDecision:
    old, new = _version(s, deployment.production), _version(s, deployment.candidate)
    return deployments.add_decision(
        s, deployment=deployment.name, rollout_id=deployment.rollout_id, decision=decision, automatic=automatic,
        production=deployment.production, candidate=deployment.candidate,
        production_model_id=old.id if old else None, candidate_model_id=new.id if new else None,
        sentence=sentence, evidence=evidence)


__all__ = ["GUARDRAILS", "METRICS", "RolloutSettings", "assign_arm", "create_deployment", "mirrored", "model_ref",
           "parse_guardrails", "promote", "rollback", "start_rollout", "stop_rollout"]
