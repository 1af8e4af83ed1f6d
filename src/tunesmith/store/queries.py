"""Reading and writing the store: small functions, one per thing a caller wants to do.

Every function takes an optional `session`. Without one it opens its own
`session_scope()` and commits before returning; with one it works inside the caller's
transaction and leaves the commit to the caller. Either way it returns ORM objects
(`Job`, `ModelVersion`, ...): after a function's own session has closed they are
detached snapshots whose columns can still be read (`.to_dict()` for JSON).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..errors import BadInputError, TunesmithError
from .db import session_scope
from .schema import (
    FINISHED_JOB_STATUSES,
    JOB_BACKENDS,
    JOB_STATUSES,
    JOB_TRANSITIONS,
    METRIC_COLUMNS,
    MODEL_STAGES,
    Base,
    DatasetVersion,
    EvalItem,
    EvalRun,
    Job,
    JobEvent,
    ModelVersion,
    Rater,
    Rating,
    RatingAssignment,
    RatingItem,
    RatingTask,
    ServedRequest,
    StepMetrics,
    utc_now,
)

Record = TypeVar("Record", Job, ModelVersion, EvalRun, RatingTask)

# What may change on a job besides its status: where it runs and how the remote side sees it.
# The status (with stop_reason, error and the start and end times) changes through transition_job only.
JOB_FIELDS = frozenset({"run_dir", "pid", "remote_name", "remote_state"})
_AMBIGUOUS_SHOWN = 5  # ids listed when a prefix matches several rows


@contextmanager
def _using(session: Session | None) -> Iterator[Session]:
    if session is not None:
        yield session
    else:
        with session_scope() as own:
            yield own


def new_id(prefix: str) -> str:
    """`<prefix>-YYYYMMDD-HHMMSS-xxxx`: sorts by creation time (UTC, to the second);
    4 random hex digits tell apart ids made in the same second."""
    return f"{prefix}-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def _fresh_id(session: Session, row_class: type[Base], prefix: str) -> str:
    while True:  # a clash needs two ids in one second with the same 16 random bits
        candidate = new_id(prefix)
        if session.get(row_class, candidate) is None:
            return candidate


# --- Dataset versions ---------------------------------------------------------------


def record_dataset_version(version: str, path: str | Path, manifest: dict[str, Any], *,
                           session: Session | None = None) -> DatasetVersion:
    """Record a prepared dataset; recording it again only updates where it lives."""
    with _using(session) as s:
        row = s.get(DatasetVersion, version)
        if row is None:
            row = DatasetVersion(id=version, path=str(path), manifest=manifest)
            s.add(row)
        else:
            row.path = str(path)
        s.flush()
        return row


# --- Jobs ---------------------------------------------------------------------------


def create_job(backend: str, spec: dict[str, Any], run_dir: str | Path, base_model: str, method: str,
               dataset_version: str | None = None, status: str = "queued", *,
               session: Session | None = None) -> Job:
    """A new job, with a first "status" event so its timeline starts at its birth."""
    _check_choice("backend", backend, JOB_BACKENDS)
    _check_choice("job status", status, JOB_STATUSES)
    with _using(session) as s:
        job = Job(id=_fresh_id(s, Job, "job"), backend=backend, status=status, spec=spec, run_dir=str(run_dir),
                  base_model=base_model, method=method, dataset_version=dataset_version)
        s.add(job)
        s.flush()
        s.add(JobEvent(job_id=job.id, kind="status", message=status, data={"from": None, "to": status}))
        s.flush()
        return job


class JobStateError(TunesmithError):
    """A job was asked to move where its life cycle does not go (succeeded -> running, say)."""


def transition_job(job_id: str, status: str, *, stop_reason: str | None = None, error: str | None = None,
                   session: Session | None = None, **fields: Any) -> Job:
    """Move the job to `status`, checked against JOB_TRANSITIONS, with a "status" event; stamp
    `started_at` on "running" and `ended_at` on a finished status. `stop_reason` and `error` are
    the new status's (cleared when not given); `fields` as in `set_job_fields`."""
    _check_choice("job status", status, JOB_STATUSES)
    _check_job_fields(fields)
    with _using(session) as s:
        job = _get_job_row(s, job_id)
        old_status, now = job.status, utc_now()
        if status not in JOB_TRANSITIONS[old_status]:
            raise JobStateError(f"job {job.id} cannot go from {old_status} to {status}",
                                "queued -> running -> succeeded | failed | cancelled; failed or cancelled -> queued")
        for name, value in fields.items():
            setattr(job, name, value)
        job.status, job.stop_reason, job.error, job.updated_at = status, stop_reason, error, now
        if status == "running":
            job.started_at = now
        if status in FINISHED_JOB_STATUSES:
            job.ended_at = now
        message = f"{old_status} → {status}" + (f" ({stop_reason})" if stop_reason else "")
        s.add(JobEvent(job_id=job.id, time=now, kind="status", message=message,
                       data={"from": old_status, "to": status, "stop_reason": stop_reason}))
        s.flush()
        return job


def set_job_fields(job_id: str, *, session: Session | None = None, **fields: Any) -> Job:
    """Set fields that are not the status (run_dir, pid, remote_name, remote_state) and touch
    `updated_at`: a write that changes nothing still counts as a sign of life."""
    _check_job_fields(fields)
    with _using(session) as s:
        job = _get_job_row(s, job_id)
        for name, value in fields.items():
            setattr(job, name, value)
        job.updated_at = utc_now()
        s.flush()
        return job


def _check_job_fields(fields: dict[str, Any]) -> None:
    unknown = set(fields) - JOB_FIELDS
    if unknown:
        raise TypeError(f"jobs cannot have {sorted(unknown)} set directly: the status, its stop_reason and error "
                        "change through transition_job; other fields are set by the store itself")


def add_event(job_id: str, kind: str, message: str, data: dict[str, Any] | None = None, *,
              session: Session | None = None) -> JobEvent:
    with _using(session) as s:
        event = JobEvent(job_id=job_id, kind=kind, message=message, data=data)
        s.add(event)
        s.flush()
        return event


def add_metrics(job_id: str, step: int, epoch: float, *, session: Session | None = None,
                **values: float | None) -> StepMetrics:
    """Record the metrics of one step. Names in METRIC_COLUMNS get their own column;
    any other name goes to `extra`."""
    columns = {name: value for name, value in values.items() if name in METRIC_COLUMNS}
    extra = {name: value for name, value in values.items() if name not in METRIC_COLUMNS}
    with _using(session) as s:
        row = StepMetrics(job_id=job_id, step=step, epoch=epoch, extra=extra or None, **columns)
        s.add(row)
        s.flush()
        return row


def get_job(id_or_prefix: str, *, session: Session | None = None) -> Job:
    """The job with this id, or the only job whose id starts with it."""
    with _using(session) as s:
        return _get_job_row(s, id_or_prefix)


def list_jobs(limit: int = 50, status: str | None = None, *, session: Session | None = None) -> list[Job]:
    """Newest first."""
    if status is not None:
        _check_choice("job status", status, JOB_STATUSES)
    query = select(Job).order_by(Job.created_at.desc(), Job.id.desc()).limit(limit)
    if status is not None:
        query = query.where(Job.status == status)
    with _using(session) as s:
        return list(s.scalars(query))


def job_events(job_id: str, after_id: int = 0, *, session: Session | None = None) -> list[JobEvent]:
    """The job's events in the order they happened; `after_id` (the last id seen) follows a live job."""
    query = select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.id > after_id).order_by(JobEvent.id)
    with _using(session) as s:
        return list(s.scalars(query))


def job_metrics(job_id: str, *, session: Session | None = None) -> list[StepMetrics]:
    """The job's metrics by step (rows for one step in the order they were recorded)."""
    query = select(StepMetrics).where(StepMetrics.job_id == job_id).order_by(StepMetrics.step, StepMetrics.id)
    with _using(session) as s:
        return list(s.scalars(query))


def _get_job_row(s: Session, id_or_prefix: str) -> Job:
    return _by_id_or_prefix(s, Job, id_or_prefix, "job", "`tunesmith jobs list` shows the jobs")


# --- Model versions -----------------------------------------------------------------


def register_model(*, base_model: str, method: str, spec: dict[str, Any], job_id: str | None = None,
                   name: str | None = None, adapter_path: str | None = None, merged_path: str | None = None,
                   remote_model: str | None = None, remote_endpoint: str | None = None,
                   dataset_version: str | None = None, final_metrics: dict[str, Any] | None = None,
                   best_metrics: dict[str, Any] | None = None, stop_reason: str | None = None,
                   lineage: dict[str, Any] | None = None, family: str | None = None,
                   output_space: dict[str, Any] | None = None, session: Session | None = None) -> ModelVersion:
    """A new model version in the registry, at stage "candidate". `family`: see `model_family`."""
    with _using(session) as s:
        if name is not None:
            _check_name_free(s, name)
        model = ModelVersion(
            id=_fresh_id(s, ModelVersion, "mv"), job_id=job_id, name=name, base_model=base_model, method=method,
            stage="candidate", adapter_path=adapter_path, merged_path=merged_path, remote_model=remote_model,
            remote_endpoint=remote_endpoint, dataset_version=dataset_version, spec=spec,
            final_metrics=final_metrics, best_metrics=best_metrics, stop_reason=stop_reason, lineage=lineage,
            family=family or None, output_space=output_space,
        )
        s.add(model)
        s.flush()
        return model


def get_model(id_or_prefix_or_alias: str, *, session: Session | None = None) -> ModelVersion:
    """The model version with this id or name, or the only one whose id starts with it."""
    with _using(session) as s:
        return _get_model_row(s, id_or_prefix_or_alias)


def list_models(limit: int = 50, *, session: Session | None = None) -> list[ModelVersion]:
    """Newest first."""
    query = select(ModelVersion).order_by(ModelVersion.created_at.desc(), ModelVersion.id.desc()).limit(limit)
    with _using(session) as s:
        return list(s.scalars(query))


def model_family(model: ModelVersion) -> str:
    """The line of versions a model belongs to: its `family` when one was set, else its base
    model. At most one model per family is in production (`set_model_stage` enforces it)."""
    return model.family or model.base_model


def set_model_stage(id_or_prefix_or_alias: str, stage: str, *, session: Session | None = None) -> ModelVersion:
    """Move a model to `stage`. Refused when it would put a second model of its family in production:
    the one there now must leave production first (to staging or archived), so a promotion is always
    a deliberate pair of steps and a rollback target is never ambiguous."""
    _check_choice("stage", stage, MODEL_STAGES)
    with _using(session) as s:
        model = _get_model_row(s, id_or_prefix_or_alias)
        if stage == "production" and model.stage != "production":
            current = _production_model(s, model_family(model), but=model.id)
            if current is not None:
                shown = f"{current.id} ({current.name})" if current.name else current.id
                raise BadInputError(
                    f"{shown} is already in production for {model_family(model)}; "
                    f"at most one model per family is in production",
                    f"move {current.id} to staging or archived first, or give {model.id} another family",
                )
        model.stage = stage
        s.flush()
        return model


def set_model_family(id_or_prefix_or_alias: str, family: str | None, *, session: Session | None = None) -> ModelVersion:
    """Set (or, with None or "", clear) a model's family. A production model cannot move into a
    family that already has one."""
    family = (family or "").strip() or None
    with _using(session) as s:
        model = _get_model_row(s, id_or_prefix_or_alias)
        target = family or model.base_model
        if model.stage == "production":
            current = _production_model(s, target, but=model.id)
            if current is not None:
                raise BadInputError(f"{current.id} is already in production for {target}",
                                    "move one of the two out of production first")
        model.family = family
        s.flush()
        return model


def _production_model(s: Session, family: str, but: str) -> ModelVersion | None:
    in_family = or_(ModelVersion.family == family, (ModelVersion.family.is_(None)) & (ModelVersion.base_model == family))
    query = select(ModelVersion).where(ModelVersion.stage == "production", ModelVersion.id != but, in_family)
    return s.scalars(query.limit(1)).first()


def _get_model_row(s: Session, text: str) -> ModelVersion:
    named = s.scalars(select(ModelVersion).where(ModelVersion.name == text)).first()
    if named is not None:
        return named  # names may not start with "mv-", so a name never hides an id
    return _by_id_or_prefix(s, ModelVersion, text, "model version", "`tunesmith models list` shows the models")


def model_name_taken(name: str, *, session: Session | None = None) -> bool:
    with _using(session) as s:
        return s.scalars(select(ModelVersion.id).where(ModelVersion.name == name)).first() is not None


def _check_name_free(s: Session, name: str) -> None:
    if not name.strip() or name.startswith("mv-"):
        raise BadInputError(f"{name!r} cannot name a model", "pick a name that is not empty and does not start with 'mv-'")
    taken = s.scalars(select(ModelVersion.id).where(ModelVersion.name == name)).first()
    if taken is not None:
        raise BadInputError(f"the name {name!r} is taken by {taken}", "pick another name")


# --- Shared -------------------------------------------------------------------------


def _by_id_or_prefix(s: Session, row_class: type[Record], text: str, noun: str, hint: str) -> Record:
    if not text.strip():
        raise BadInputError(f"no {noun} id given", hint)
    exact = s.get(row_class, text)
    if exact is not None:
        return exact
    query = select(row_class).where(row_class.id.startswith(text, autoescape=True))
    matches = list(s.scalars(query.order_by(row_class.id).limit(_AMBIGUOUS_SHOWN + 1)))
    if not matches:
        raise BadInputError(f"no {noun} {text!r}", hint)
    if len(matches) > 1:
        shown = ", ".join(m.id for m in matches[:_AMBIGUOUS_SHOWN]) + (", …" if len(matches) > _AMBIGUOUS_SHOWN else "")
        raise BadInputError(f"{text!r} matches several {noun}s: {shown}", "type more of the id")
    return matches[0]


def _check_choice(what: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise BadInputError(f"unknown {what} {value!r}", f"use one of: {', '.join(choices)}")


# --- Served requests ----------------------------------------------------------------


def add_served_requests(rows: list[dict[str, Any]], *, session: Session | None = None) -> None:
    """Record requests the server answered or refused (ServedRequest columns by name), in one transaction."""
    with _using(session) as s:
        s.add_all(ServedRequest(**row) for row in rows)
        s.flush()


def list_served_requests(model: str | None = None, since: datetime | None = None, until: datetime | None = None,
                         limit: int | None = None, *, session: Session | None = None) -> list[ServedRequest]:
    """Oldest first. `model` matches the name the client asked for or the registry id it resolved to."""
    query = select(ServedRequest).order_by(ServedRequest.time, ServedRequest.id)
    if model is not None:
        query = query.where((ServedRequest.model == model) | (ServedRequest.model_id == model))
    if since is not None:
        query = query.where(ServedRequest.time >= since)
    if until is not None:
        query = query.where(ServedRequest.time < until)
    if limit is not None:
        query = query.limit(limit)
    with _using(session) as s:
        return list(s.scalars(query))


def served_traffic(names: list[str], model_ids: list[str], since: datetime | None = None,
                   until: datetime | None = None, *, session: Session | None = None) -> list[tuple]:
    """(time, model, model_id, input_messages, output_text, request_id) of the answered requests
    with logged text, oldest first, where the name the client asked for is one of `names` or the registry id
    one of `model_ids` (a deployment is a name; a model, its id). Plain tuples: monitoring reads
    100,000 rows at a time."""
    match = []
    if names:
        match.append(ServedRequest.model.in_(names))
    if model_ids:
        match.append(ServedRequest.model_id.in_(model_ids))
    if not match:
        return []
    query = (select(ServedRequest.time, ServedRequest.model, ServedRequest.model_id, ServedRequest.input_messages,
                    ServedRequest.output_text, ServedRequest.request_id)
             .where(or_(*match), ServedRequest.status_code == 200, ServedRequest.output_text.is_not(None))
             .order_by(ServedRequest.time, ServedRequest.id))
    if since is not None:
        query = query.where(ServedRequest.time >= since)
    if until is not None:
        query = query.where(ServedRequest.time < until)
    with _using(session) as s:
        return [tuple(row) for row in s.execute(query)]


# --- Eval runs ----------------------------------------------------------------------


def record_eval_run(*, id: str, model_ref: str, data_path: str | Path, metrics_kind: str, examples: int,
                    items: list[dict[str, Any]], model_id: str | None = None, baseline_ref: str | None = None,
                    dataset_version: str | None = None, split: str | None = None, verdict: str | None = None,
                    verdict_text: str | None = None, summary: dict[str, Any] | None = None,
                    results_path: str | None = None, report_path: str | None = None,
                    session: Session | None = None) -> EvalRun:
    """An evaluation and its items (EvalItem columns by name, less the run id), in one transaction.
    `id` comes from `new_id("ev")`, so the run's folder can be named before the row exists."""
    with _using(session) as s:
        run = EvalRun(id=id, model_id=model_id, model_ref=model_ref, baseline_ref=baseline_ref,
                      dataset_version=dataset_version, data_path=str(data_path), split=split,
                      metrics_kind=metrics_kind, examples=examples, verdict=verdict, verdict_text=verdict_text,
                      summary=summary, results_path=results_path, report_path=report_path)
        s.add(run)
        s.flush()
        s.add_all(EvalItem(eval_run_id=run.id, **item) for item in items)
        s.flush()
        return run


def get_eval_run(id_or_prefix: str, *, session: Session | None = None) -> EvalRun:
    """The eval run with this id, or the only one whose id starts with it."""
    with _using(session) as s:
        return _by_id_or_prefix(s, EvalRun, id_or_prefix, "eval run", "`tunesmith models show MODEL` lists its eval runs")


def list_eval_runs(model_id: str | None = None, limit: int = 50, *, session: Session | None = None) -> list[EvalRun]:
    """Newest first; only those of one registered model when `model_id` is given."""
    query = select(EvalRun).order_by(EvalRun.created_at.desc(), EvalRun.id.desc()).limit(limit)
    if model_id is not None:
        query = query.where(EvalRun.model_id == model_id)
    with _using(session) as s:
        return list(s.scalars(query))


def eval_items(eval_run_id: str, *, session: Session | None = None) -> list[EvalItem]:
    """The run's items in the order they were recorded."""
    query = select(EvalItem).where(EvalItem.eval_run_id == eval_run_id).order_by(EvalItem.id)
    with _using(session) as s:
        return list(s.scalars(query))


def get_dataset_version(version: str, *, session: Session | None = None) -> DatasetVersion | None:
    """The recorded prepared dataset with this version hash, or None."""
    with _using(session) as s:
        return s.get(DatasetVersion, version)


# --- Human rating -------------------------------------------------------------------


def record_rating_task(*, mode: str, models: dict[str, Any], settings: dict[str, Any], items: list[dict[str, Any]],
                       raters: list[dict[str, Any]], assignments: list[dict[str, Any]],
                       eval_run_id: str | None = None, instructions: str | None = None,
                       expires_at: datetime | None = None, session: Session | None = None) -> RatingTask:
    """A rating task with all its rows, in one transaction (all or nothing).

    `items` are RatingItem columns by name; `raters` are {"name", "token"}; each assignment
    names its item and rater by their index in those lists ("item", "rater") and gives
    "sequence" and "first_on_left"."""
    with _using(session) as s:
        task = RatingTask(id=_fresh_id(s, RatingTask, "rt"), eval_run_id=eval_run_id, mode=mode, status="open",
                          models=models, instructions=instructions, settings=settings, expires_at=expires_at)
        s.add(task)
        s.flush()
        item_rows = [RatingItem(task_id=task.id, **item) for item in items]
        rater_rows = [Rater(task_id=task.id, **rater) for rater in raters]
        s.add_all(item_rows + rater_rows)
        s.flush()
        s.add_all(RatingAssignment(task_id=task.id, rater_id=rater_rows[a["rater"]].id, item_id=item_rows[a["item"]].id,
                                   sequence=a["sequence"], first_on_left=a["first_on_left"]) for a in assignments)
        s.flush()
        return task


def get_rating_task(id_or_prefix: str, *, session: Session | None = None) -> RatingTask:
    """The rating task with this id, or the only one whose id starts with it."""
    with _using(session) as s:
        return _by_id_or_prefix(s, RatingTask, id_or_prefix, "rating task", "`tunesmith rate list` shows the tasks")


def list_rating_tasks(eval_run_id: str | None = None, limit: int = 50, *,
                      session: Session | None = None) -> list[RatingTask]:
    """Newest first; only those made from one eval run when `eval_run_id` is given."""
    query = select(RatingTask).order_by(RatingTask.created_at.desc(), RatingTask.id.desc()).limit(limit)
    if eval_run_id is not None:
        query = query.where(RatingTask.eval_run_id == eval_run_id)
    with _using(session) as s:
        return list(s.scalars(query))


def close_rating_task(id_or_prefix: str, *, session: Session | None = None) -> RatingTask:
    """Close a task: its links stop working; its ratings stay."""
    with _using(session) as s:
        task = _by_id_or_prefix(s, RatingTask, id_or_prefix, "rating task", "`tunesmith rate list` shows the tasks")
        if task.status != "closed":
            task.status, task.closed_at = "closed", utc_now()
        s.flush()
        return task


def rating_items(task_id: str, *, session: Session | None = None) -> list[RatingItem]:
    with _using(session) as s:
        return list(s.scalars(select(RatingItem).where(RatingItem.task_id == task_id).order_by(RatingItem.id)))


def task_raters(task_id: str, *, session: Session | None = None) -> list[Rater]:
    with _using(session) as s:
        return list(s.scalars(select(Rater).where(Rater.task_id == task_id).order_by(Rater.id)))


def rating_assignments(task_id: str, *, session: Session | None = None) -> list[RatingAssignment]:
    query = (select(RatingAssignment).where(RatingAssignment.task_id == task_id)
             .order_by(RatingAssignment.rater_id, RatingAssignment.sequence))
    with _using(session) as s:
        return list(s.scalars(query))


def task_ratings(task_id: str, *, session: Session | None = None) -> list[Rating]:
    """The task's ratings in the order they were given."""
    with _using(session) as s:
        return list(s.scalars(select(Rating).where(Rating.task_id == task_id).order_by(Rating.time, Rating.id)))


def rater_by_token(token: str, *, session: Session | None = None) -> Rater | None:
    with _using(session) as s:
        return s.scalars(select(Rater).where(Rater.token == token)).first()


def rater_queue(rater_id: int, *, session: Session | None = None
                ) -> list[tuple[RatingAssignment, RatingItem, Rating | None]]:
    """The rater's assignments in queue order, each with its item and its rating so far (or None)."""
    query = (select(RatingAssignment, RatingItem, Rating)
             .join(RatingItem, RatingItem.id == RatingAssignment.item_id)
             .outerjoin(Rating, Rating.assignment_id == RatingAssignment.id)
             .where(RatingAssignment.rater_id == rater_id).order_by(RatingAssignment.sequence))
    with _using(session) as s:
        return [tuple(row) for row in s.execute(query)]


def add_rating(assignment: RatingAssignment, item: RatingItem, *, choice: str | None, left_score: int | None,
               right_score: int | None, comment: str | None, session: Session | None = None) -> Rating:
    """Store one rating with the order it was shown in; a second rating of the same
    assignment is refused (the unique assignment id) and leaves no row."""
    left, right = ((item.first_model, item.second_model) if assignment.first_on_left
                   else (item.second_model, item.first_model))
    with _using(session) as s:
        taken = s.scalars(select(Rating.id).where(Rating.assignment_id == assignment.id)).first()
        if taken is not None:
            raise RatedTwiceError()
        row = Rating(task_id=assignment.task_id, assignment_id=assignment.id, rater_id=assignment.rater_id,
                     item_id=item.id, left_model=left, right_model=right, choice=choice, left_score=left_score,
                     right_score=right_score, comment=comment)
        s.add(row)
        try:
            s.flush()
        except IntegrityError as exc:  # the same rating sent twice at once: the unique assignment refuses one
            raise RatedTwiceError() from exc
        return row


class RatedTwiceError(BadInputError):
    def __init__(self) -> None:
        super().__init__("this item was rated already", "reload the page to get the next item")


# --- Pages: the web app's reads (a page of rows and the total that match) -----------

Page = tuple[list[Any], int]
EVAL_ITEM_VIEWS = ("all", "wins", "losses", "ties", "errors")


def _page(s: Session, query, limit: int, offset: int) -> Page:
    total = s.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    return list(s.scalars(query.limit(limit).offset(offset))), total


def list_dataset_versions(limit: int = 50, offset: int = 0, *, session: Session | None = None) -> Page:
    """Recorded prepared datasets, newest first."""
    query = select(DatasetVersion).order_by(DatasetVersion.created_at.desc(), DatasetVersion.id)
    with _using(session) as s:
        return _page(s, query, limit, offset)


def jobs_page(status: str | None = None, backend: str | None = None, text: str | None = None, limit: int = 50,
              offset: int = 0, dataset_version: str | None = None, *, session: Session | None = None) -> Page:
    """Jobs newest first; `text` matches the start of the id, the base model, the method or the dataset version."""
    if status:
        _check_choice("job status", status, JOB_STATUSES)
    if backend:
        _check_choice("backend", backend, JOB_BACKENDS)
    query = select(Job).order_by(Job.created_at.desc(), Job.id.desc())
    if status:
        query = query.where(Job.status == status)
    if backend:
        query = query.where(Job.backend == backend)
    if dataset_version:
        query = query.where(Job.dataset_version == dataset_version)
    if text:
        query = query.where(or_(Job.id.startswith(text, autoescape=True),
                                Job.base_model.contains(text, autoescape=True), Job.method == text,
                                Job.dataset_version.startswith(text, autoescape=True)))
    with _using(session) as s:
        return _page(s, query, limit, offset)


def models_page(stage: str | None = None, text: str | None = None, limit: int = 50, offset: int = 0, *,
                session: Session | None = None) -> Page:
    """Model versions newest first; `text` matches the start of the id, the name, the family or the base model."""
    if stage:
        _check_choice("stage", stage, MODEL_STAGES)
    query = select(ModelVersion).order_by(ModelVersion.created_at.desc(), ModelVersion.id.desc())
    if stage:
        query = query.where(ModelVersion.stage == stage)
    if text:
        query = query.where(or_(ModelVersion.id.startswith(text, autoescape=True),
                                ModelVersion.name.contains(text, autoescape=True),
                                ModelVersion.family.contains(text, autoescape=True),
                                ModelVersion.base_model.contains(text, autoescape=True)))
    with _using(session) as s:
        return _page(s, query, limit, offset)


def eval_runs_page(verdict: str | None = None, model_id: str | None = None, limit: int = 50, offset: int = 0, *,
                   session: Session | None = None) -> Page:
    """Evaluations newest first."""
    query = select(EvalRun).order_by(EvalRun.created_at.desc(), EvalRun.id.desc())
    if verdict:
        query = query.where(EvalRun.verdict == verdict)
    if model_id:
        query = query.where(EvalRun.model_id == model_id)
    with _using(session) as s:
        return _page(s, query, limit, offset)


def job_status_counts(*, session: Session | None = None) -> dict[str, int]:
    with _using(session) as s:
        return dict(s.execute(select(Job.status, func.count()).group_by(Job.status)).all())


def job_metric_values(job_id: str, after_id: int = 0, max_points: int | None = None, *,
                      session: Session | None = None) -> list[tuple]:
    """The job's metric rows after row `after_id`, in the order they were recorded, as plain tuples
    (id, step, epoch, *METRIC_COLUMNS): a chart's data, without building an object per row.

    With `max_points`, a longer run is thinned to about that many steps for a chart that cannot
    show more: every k-th step, every evaluation, and the newest row (whose id is the cursor for
    what comes next) are kept."""
    columns = [StepMetrics.id, StepMetrics.step, StepMetrics.epoch] + [getattr(StepMetrics, c) for c in METRIC_COLUMNS]
    where = [StepMetrics.job_id == job_id, StepMetrics.id > after_id]
    with _using(session) as s:
        if max_points:
            count, last_step, last_id = s.execute(
                select(func.count(), func.max(StepMetrics.step), func.max(StepMetrics.id)).where(*where)).one()
            if count > max_points:
                stride = max(1, -(-(last_step or 0) // max_points))
                where.append(or_(StepMetrics.step % stride == 0, StepMetrics.eval_loss.is_not(None),
                                 StepMetrics.id == last_id))
        return [tuple(row) for row in s.execute(select(*columns).where(*where).order_by(StepMetrics.id))]


def eval_items_page(eval_run_id: str, score_key: str | None, view: str = "all", search: str | None = None,
                    limit: int = 20, offset: int = 0, *, session: Session | None = None) -> Page:
    """One run's items in recorded order, a page at a time. `view`: wins (the model's `score_key`
    above the baseline's), losses (below), ties, errors (the model's score under 1: a wrong label,
    a field missed, a text that differs from the reference), or all. `search` matches the input,
    the reference or either output (case-insensitive, ASCII)."""
    _check_choice("view", view, EVAL_ITEM_VIEWS)
    query = select(EvalItem).where(EvalItem.eval_run_id == eval_run_id).order_by(EvalItem.id)
    if view != "all" and score_key:
        model = EvalItem.scores[("model", score_key)].as_float()
        baseline = EvalItem.scores[("baseline", score_key)].as_float()
        query = query.where({"wins": model > baseline, "losses": model < baseline, "ties": model == baseline,
                             "errors": model < 1}[view])
    if search:
        texts = [EvalItem.input_text, EvalItem.reference, EvalItem.outputs["model"].as_string(),
                 EvalItem.outputs["baseline"].as_string()]
        query = query.where(or_(*(func.lower(t).contains(search.lower(), autoescape=True) for t in texts)))
    with _using(session) as s:
        return _page(s, query, limit, offset)
