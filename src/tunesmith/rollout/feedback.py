"""Feedback on served requests: a score, thumbs up or down, the correct answer or label.

One at a time through `POST /v1/feedback`, or many from a JSONL file (`tunesmith rollout label`),
each line `{"request_id": ..., "label" | "answer": ..., "score": ..., "thumbs": ...}`. Nothing is
stored unless every line is good, and a bad line is named by file and line.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..data.json_lines import json_lines
from ..errors import BadInputError
from ..store import db, deployments

_THUMBS = {"up": 1, "down": 0, 1: 1, 0: 0, -1: 0}  # True and False hash as 1 and 0
FIELDS = ("request_id", "score", "thumbs", "answer", "label")


def feedback_row(body: Any, where: str = "feedback") -> dict[str, Any]:
    """A Feedback row from what a caller sent; BadInputError naming the field otherwise."""
    if not isinstance(body, dict):
        raise BadInputError(f"{where}: expected a JSON object")
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise BadInputError(f"{where}: unknown field {unknown[0]!r}", f"use {', '.join(FIELDS)}")
    request_id = body.get("request_id")
    if not isinstance(request_id, str) or not request_id.strip():
        raise BadInputError(f"{where}: request_id is missing", "give the id the server answered with")
    row: dict[str, Any] = {"request_id": request_id.strip(), "score": None, "thumbs": None, "answer": None}
    score = body.get("score")
    if score is not None:
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
            raise BadInputError(f"{where}: score must be a number (got {score!r})")
        row["score"] = float(score)
    thumbs = body.get("thumbs")
    if thumbs is not None:
        key = thumbs.lower() if isinstance(thumbs, str) else thumbs
        if not isinstance(key, (str, bool, int)) or key not in _THUMBS:
            raise BadInputError(f"{where}: thumbs must be up or down (or true/false, 1/0; got {thumbs!r})")
        row["thumbs"] = _THUMBS[key]
    answers = [body[k] for k in ("answer", "label") if body.get(k) is not None]
    if len(answers) == 2 and answers[0] != answers[1]:
        raise BadInputError(f"{where}: answer and label differ; give one of them")
    if answers:
        if not isinstance(answers[0], str) or not answers[0].strip():
            raise BadInputError(f"{where}: answer/label must be non-empty text")
        row["answer"] = answers[0]
    if row["score"] is None and row["thumbs"] is None and row["answer"] is None:
        raise BadInputError(f"{where}: nothing to record", "give a score, thumbs, or the correct answer or label")
    return row


def record_feedback(body: dict[str, Any], source: str = "api") -> dict[str, Any]:
    """Store one piece of feedback; BadInputError for a bad body or a request id the server never gave."""
    row = {**feedback_row(body), "source": source}
    deployments.add_feedback([row])
    return row


def import_labels(deployment: str, path: str | Path) -> int:
    """Store every line of a JSONL file as feedback on requests to `deployment`; all or nothing."""
    deployments.get_deployment(deployment)  # an unknown deployment is bad input before the file is read
    rows, place_of = [], {}
    for where, body in json_lines(path):
        rows.append({**feedback_row(body, where), "source": "import"})
        place_of.setdefault(rows[-1]["request_id"], where)
    if not rows:
        raise BadInputError(f"{path}: no labels in the file", 'one JSON object a line: {"request_id": ..., "label": ...}')
    with db.session_scope() as s:
        owners = deployments.request_deployments(list(place_of), session=s)
        for request_id, where in place_of.items():
            if request_id not in owners:
                raise BadInputError(f"{where}: no served request with the id {request_id!r}",
                                    "labels name the request id the server answered with")
            if owners[request_id] != deployment:
                raise BadInputError(f"{where}: the request {request_id!r} was not made to {deployment!r}")
        deployments.add_feedback(rows, session=s)
    return len(rows)
