"""Reading and writing deployments, their history, feedback and rollout decisions.

Like queries.py: every function takes an optional `session` (without one it commits its own
transaction) and returns detached ORM snapshots. The rules of a rollout (which changes are
allowed, what a promote does to the registry) live in rollout/deployments.py; this module
only checks what the database itself must never hold.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..errors import BadInputError
from .queries import _fresh_id, _using
from .schema import (
    Deployment,
    DeploymentEvent,
    Feedback,
    RolloutDecision,
    ServedRequest,
)

_NO_DEPLOYMENT_HINT = "`tunesmith rollout list` shows the deployments; `tunesmith rollout create` makes one"


def get_deployment(name: str, *, session: Session | None = None) -> Deployment:
    with _using(session) as s:
        deployment = s.get(Deployment, name)
        if deployment is None:
            raise BadInputError(f"no deployment {name!r}", _NO_DEPLOYMENT_HINT)
        return deployment


def find_deployment(name: str, *, session: Session | None = None) -> Deployment | None:
    with _using(session) as s:
        return s.get(Deployment, name)


def list_deployments(*, session: Session | None = None) -> list[Deployment]:
    with _using(session) as s:
        return list(s.scalars(select(Deployment).order_by(Deployment.name)))


def add_deployment_event(s: Session, deployment: Deployment, kind: str, message: str) -> DeploymentEvent:
    """A history line holding the deployment's fields as they are after the change."""
    s.flush()
    fields = {k: v for k, v in deployment.to_dict().items() if k not in ("created_at", "updated_at")}
    event = DeploymentEvent(deployment=deployment.name, kind=kind, message=message, data=fields)
    s.add(event)
    s.flush()
    return event


def deployment_events(name: str, *, session: Session | None = None) -> list[DeploymentEvent]:
    query = select(DeploymentEvent).where(DeploymentEvent.deployment == name).order_by(DeploymentEvent.id)
    with _using(session) as s:
        return list(s.scalars(query))


def add_decision(s: Session, **fields: Any) -> RolloutDecision:
    decision = RolloutDecision(id=_fresh_id(s, RolloutDecision, "dc"), **fields)
    s.add(decision)
    s.flush()
    return decision


def list_decisions(name: str | None = None, *, session: Session | None = None) -> list[RolloutDecision]:
    """Oldest first."""
    query = select(RolloutDecision).order_by(RolloutDecision.time, RolloutDecision.id)
    if name is not None:
        query = query.where(RolloutDecision.deployment == name)
    with _using(session) as s:
        return list(s.scalars(query))


# --- Requests and feedback ------------------------------------------------------------


class UnknownRequestError(BadInputError):
    """Feedback names a request id no served request carries."""


def request_deployments(request_ids: list[str], *, session: Session | None = None) -> dict[str, str | None]:
    """The deployment each of `request_ids` was made to (None: a model called by name); ids no
    served request carries are left out."""
    found: dict[str, str | None] = {}
    with _using(session) as s:
        for start in range(0, len(request_ids), 500):  # stay under SQLite's bound-parameter limit
            chunk = request_ids[start:start + 500]
            found.update(s.execute(select(ServedRequest.request_id, ServedRequest.deployment)
                                   .where(ServedRequest.request_id.in_(chunk))).all())
    return found


def add_feedback(rows: list[dict[str, Any]], *, session: Session | None = None) -> int:
    """Store feedback rows (Feedback columns by name) in one transaction; every request id must be
    known, else nothing is stored."""
    with _using(session) as s:
        ids = sorted({row["request_id"] for row in rows})
        known = request_deployments(ids, session=s)
        missing = [i for i in ids if i not in known]
        if missing:
            shown = ", ".join(missing[:5]) + (", …" if len(missing) > 5 else "")
            raise UnknownRequestError(f"no served request with the id {shown}",
                                "feedback names the request id the server answered with "
                                "(the response's id, or its X-Tunesmith-Request-Id header)")
        s.add_all(Feedback(**row) for row in rows)
        s.flush()
    return len(rows)


def rollout_requests(rollout_id: str, *, session: Session | None = None) -> list[ServedRequest]:
    """Every request logged under one rollout, oldest first."""
    query = select(ServedRequest).where(ServedRequest.rollout_id == rollout_id).order_by(ServedRequest.id)
    with _using(session) as s:
        return list(s.scalars(query))


def feedback_for(request_ids: list[str], *, session: Session | None = None) -> dict[str, dict[str, Any]]:
    """request id -> the latest score, thumbs and answer given for it (each field its latest non-null value)."""
    merged: dict[str, dict[str, Any]] = {}
    with _using(session) as s:
        for start in range(0, len(request_ids), 500):
            chunk = request_ids[start:start + 500]
            query = select(Feedback).where(Feedback.request_id.in_(chunk)).order_by(Feedback.id)
            for row in s.scalars(query):
                entry = merged.setdefault(row.request_id, {})
                for key in ("score", "thumbs", "answer"):
                    if getattr(row, key) is not None:
                        entry[key] = getattr(row, key)
    return merged


def request_counts(deployment: str, since: datetime | None = None, *,
                   session: Session | None = None) -> dict[str, int]:
    """route -> requests logged for a deployment."""
    query = (select(ServedRequest.route, func.count()).where(ServedRequest.deployment == deployment)
             .group_by(ServedRequest.route))
    if since is not None:
        query = query.where(ServedRequest.time >= since)
    with _using(session) as s:
        return {route or "": count for route, count in s.execute(query)}
