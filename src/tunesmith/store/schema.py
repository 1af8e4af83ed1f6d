"""The store's tables as ORM classes: what a dataset version, a job, its events and
metrics, and a model version are on disk.

These classes describe the schema as the newest migration leaves it; they never create
it. A change here goes with a new migration in `migrations.py` (a test compares the two).

The classes have no `relationship()`s on purpose: query functions hand out objects after
their session has closed, and a lazy relationship on a detached object raises. Events and
metrics of a job come from `queries.job_events` and `queries.job_metrics` instead.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, Integer, MetaData, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

JOB_BACKENDS = ("local", "vertex")
JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
FINISHED_JOB_STATUSES = ("succeeded", "failed", "cancelled")
# The job life cycle: queued -> running -> succeeded | failed | cancelled, and back to queued to
# resume a failed or cancelled job. A remote job may be seen finished before it was seen running.
JOB_TRANSITIONS = {
    "queued": ("running", "succeeded", "failed", "cancelled"),
    "running": ("succeeded", "failed", "cancelled"),
    "failed": ("queued",),
    "cancelled": ("queued",),
    "succeeded": (),
}
MODEL_STAGES = ("candidate", "staging", "production", "archived")

JSONDict = dict[str, Any]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every database.

    SQLite has no time zone type: SQLAlchemy writes the wall-clock digits and reads them
    back naive. Writing UTC and reading the digits back as UTC keeps values exact there,
    and PostgreSQL's `timestamptz` round-trips them natively.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the store keeps timezone-aware UTC times")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    # Named constraints, so that a later migration can drop or alter them by name
    # (SQLite's batch mode in alembic needs the names). Migration 1 spells out the same names.
    metadata = MetaData(naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    })
    # none_as_null: a Python None is stored as SQL NULL, not as the JSON text "null".
    type_annotation_map = {datetime: UTCDateTime(), JSONDict: JSON(none_as_null=True)}

    def to_dict(self) -> dict[str, Any]:
        """Column values by attribute name, datetimes as ISO 8601 strings: ready for JSON."""
        values = {attr.key: getattr(self, attr.key) for attr in self.__mapper__.column_attrs}
        return {key: value.isoformat() if isinstance(value, datetime) else value for key, value in values.items()}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {getattr(self, 'id', '?')}>"


class DatasetVersion(Base):
    """A prepared, sealed dataset folder; `id` is the manifest's `dataset_version` hash."""

    __tablename__ = "dataset_versions"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    path: Mapped[str] = mapped_column(String)  # the prepared folder, where it was last recorded
    manifest: Mapped[JSONDict]  # manifest.json as written by `prepare`
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class Job(Base):
    """One training run on one backend, from queued to finished."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String, primary_key=True)  # job-20261125-141502-a1b2
    backend: Mapped[str] = mapped_column(String)  # one of JOB_BACKENDS
    status: Mapped[str] = mapped_column(String)  # one of JOB_STATUSES
    stop_reason: Mapped[str | None] = mapped_column(String)  # completed, stopped_early, nan_loss, cancelled, error
    spec: Mapped[JSONDict]  # the fully resolved training spec
    run_dir: Mapped[str] = mapped_column(String)  # $TUNESMITH_HOME/runs/<job id>
    base_model: Mapped[str] = mapped_column(String)
    method: Mapped[str] = mapped_column(String)  # lora, qlora, full, or the managed path's name
    dataset_version: Mapped[str | None] = mapped_column(String)  # a dataset_versions.id; not enforced
    pid: Mapped[int | None] = mapped_column(Integer)  # the local training process, while it runs
    remote_name: Mapped[str | None] = mapped_column(String)  # the managed job's resource name
    remote_state: Mapped[str | None] = mapped_column(String)  # the managed job's own state, as last polled
    error: Mapped[str | None] = mapped_column(Text)  # what went wrong, for a person to read
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)


class JobEvent(Base):
    """A line in a job's timeline: a status change, a log line, a checkpoint, a warning."""

    __tablename__ = "job_events"
    __table_args__ = (Index(None, "job_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # increasing: a cursor for followers
    job_id: Mapped[str] = mapped_column(String, ForeignKey("jobs.id", ondelete="CASCADE"))
    time: Mapped[datetime] = mapped_column(default=utc_now)
    kind: Mapped[str] = mapped_column(String)  # status, log, checkpoint, warning, stopped_early, ...
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[JSONDict | None]


class StepMetrics(Base):
    """The metrics a job reported at one training step (train and eval side by side)."""

    __tablename__ = "metrics"
    __table_args__ = (Index(None, "job_id", "step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(String, ForeignKey("jobs.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(Integer)
    epoch: Mapped[float] = mapped_column(Float)
    time: Mapped[datetime] = mapped_column(default=utc_now)
    train_loss: Mapped[float | None] = mapped_column(Float)
    eval_loss: Mapped[float | None] = mapped_column(Float)
    token_accuracy: Mapped[float | None] = mapped_column(Float)
    eval_token_accuracy: Mapped[float | None] = mapped_column(Float)
    learning_rate: Mapped[float | None] = mapped_column(Float)
    tokens_per_s: Mapped[float | None] = mapped_column(Float)
    extra: Mapped[JSONDict | None]  # any other value reported at this step, by name


METRIC_COLUMNS = ("train_loss", "eval_loss", "token_accuracy", "eval_token_accuracy", "learning_rate", "tokens_per_s")


class ModelVersion(Base):
    """A tuned model in the registry, with the lineage to reproduce and judge it."""

    __tablename__ = "model_versions"

    id: Mapped[str] = mapped_column(String, primary_key=True)  # mv-20261125-141502-a1b2
    job_id: Mapped[str | None] = mapped_column(String, ForeignKey("jobs.id", ondelete="SET NULL"))
    name: Mapped[str | None] = mapped_column(String, unique=True)  # an alias a person picks; NULLs don't clash
    # The line of versions that stand in for one another (what "the production model" is
    # per): at most one version per family is in production. NULL: the base model's family.
    family: Mapped[str | None] = mapped_column(String, index=True)
    base_model: Mapped[str] = mapped_column(String)
    method: Mapped[str] = mapped_column(String)
    stage: Mapped[str] = mapped_column(String)  # one of MODEL_STAGES; "candidate" when registered
    adapter_path: Mapped[str | None] = mapped_column(String)  # a PEFT adapter folder
    merged_path: Mapped[str | None] = mapped_column(String)  # full weights with the adapter merged in
    remote_model: Mapped[str | None] = mapped_column(String)  # the managed path's tuned model resource
    remote_endpoint: Mapped[str | None] = mapped_column(String)  # where the managed model is served
    dataset_version: Mapped[str | None] = mapped_column(String)
    spec: Mapped[JSONDict]  # the training spec that produced it
    final_metrics: Mapped[JSONDict | None]  # metrics at the last step
    best_metrics: Mapped[JSONDict | None]  # metrics at the best eval step (the weights kept)
    stop_reason: Mapped[str | None] = mapped_column(String)
    lineage: Mapped[JSONDict | None]  # anything else worth keeping about where it came from
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    # What its training data's outputs may be (data/output_space.py); NULL: free text or unknown.
    output_space: Mapped[JSONDict | None]


class EvalRun(Base):
    """One evaluation: a model against a baseline on one split, with the statistics and verdict."""

    __tablename__ = "eval_runs"
    __table_args__ = (Index(None, "model_id"),)

    id: Mapped[str] = mapped_column(String, primary_key=True)  # ev-20261125-141502-a1b2
    model_id: Mapped[str | None] = mapped_column(String, ForeignKey("model_versions.id", ondelete="SET NULL"))
    model_ref: Mapped[str] = mapped_column(String)  # what was evaluated, as the user named it
    baseline_ref: Mapped[str | None] = mapped_column(String)  # what it was compared with
    dataset_version: Mapped[str | None] = mapped_column(String)
    data_path: Mapped[str] = mapped_column(String)
    split: Mapped[str | None] = mapped_column(String)
    metrics_kind: Mapped[str] = mapped_column(String)  # label, template, free-text
    examples: Mapped[int] = mapped_column(Integer)
    verdict: Mapped[str | None] = mapped_column(String)  # better, no_difference, worse
    verdict_text: Mapped[str | None] = mapped_column(Text)  # the one-sentence verdict
    summary: Mapped[JSONDict | None]  # metrics with intervals, differences, p-values
    results_path: Mapped[str | None] = mapped_column(String)  # the per-example JSONL
    report_path: Mapped[str | None] = mapped_column(String)  # the HTML report
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class EvalItem(Base):
    """One example of an evaluation: its reference and each model's output and scores."""

    __tablename__ = "eval_items"
    __table_args__ = (Index(None, "eval_run_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    eval_run_id: Mapped[str] = mapped_column(String, ForeignKey("eval_runs.id", ondelete="CASCADE"))
    example_id: Mapped[str] = mapped_column(String)
    input_text: Mapped[str] = mapped_column(Text)
    reference: Mapped[str] = mapped_column(Text)
    outputs: Mapped[JSONDict]  # {"model": text, "baseline": text}
    scores: Mapped[JSONDict | None]  # {"model": {...}, "baseline": {...}}


class ServedRequest(Base):
    """One request the server answered (or refused), for latency figures and the next dataset."""

    __tablename__ = "served_requests"
    __table_args__ = (Index(None, "time"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[datetime] = mapped_column(default=utc_now)
    api: Mapped[str] = mapped_column(String)  # openai | gemini
    model: Mapped[str] = mapped_column(String)  # the name the client asked for
    model_id: Mapped[str | None] = mapped_column(String)  # the registry id it resolved to, if any
    route: Mapped[str | None] = mapped_column(String)  # rollout arm: production, candidate (A/B) or shadow
    status_code: Mapped[int] = mapped_column(Integer)
    latency_s: Mapped[float | None] = mapped_column(Float)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    system_text: Mapped[str | None] = mapped_column(Text)
    input_messages: Mapped[JSONDict | None]  # {"turns": [{"role", "text"}]}; NULL with --no-log
    output_text: Mapped[str | None] = mapped_column(Text)  # NULL with --no-log
    error: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(String, index=True)  # the id the caller saw (feedback names it)
    deployment: Mapped[str | None] = mapped_column(String, index=True)  # the deployment name called, if any
    rollout_id: Mapped[str | None] = mapped_column(String)  # the rollout running when it was served
    subject: Mapped[str | None] = mapped_column(String)  # who asked: the A/B assignment unit
    pair_id: Mapped[str | None] = mapped_column(String)  # shadow: the caller's request id on both rows of a pair


# --- Human rating (evaluate/human) ---------------------------------------------------

RATING_MODES = ("pairwise", "scale", "both")
RATING_TASK_STATUSES = ("open", "closed")
PAIRWISE_CHOICES = ("left", "right", "tie", "both_bad")


class RatingTask(Base):
    """A blind rating task: items (an input and two outputs) that raters judge through private links."""

    __tablename__ = "rating_tasks"

    id: Mapped[str] = mapped_column(String, primary_key=True)  # rt-20261125-141502-a1b2
    eval_run_id: Mapped[str | None] = mapped_column(String, ForeignKey("eval_runs.id", ondelete="SET NULL"))
    mode: Mapped[str] = mapped_column(String)  # one of RATING_MODES
    status: Mapped[str] = mapped_column(String)  # one of RATING_TASK_STATUSES
    models: Mapped[JSONDict]  # {"keys": [output key, ...], "labels": {key: name a person reads}}
    instructions: Mapped[str | None] = mapped_column(Text)
    settings: Mapped[JSONDict]  # overlap, raters per overlap item, seed, source, counts
    expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    closed_at: Mapped[datetime | None]


class RatingItem(Base):
    """One input with the two outputs shown side by side (a pair of models, or a gold pair)."""

    __tablename__ = "rating_items"
    __table_args__ = (Index(None, "task_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[str] = mapped_column(String, ForeignKey("rating_tasks.id", ondelete="CASCADE"))
    example_id: Mapped[str] = mapped_column(String)  # the input's id: the cluster of the bootstrap
    input_text: Mapped[str] = mapped_column(Text)
    reference: Mapped[str | None] = mapped_column(Text)
    first_model: Mapped[str] = mapped_column(String)  # an output key of the task (gold: "gold:better")
    second_model: Mapped[str] = mapped_column(String)
    first_output: Mapped[str] = mapped_column(Text)
    second_output: Mapped[str] = mapped_column(Text)
    gold: Mapped[JSONDict | None]  # known answer: {"choice": "first"|"second"|"tie", "scores": [s1, s2]}


class Rater(Base):
    """A person rating one task, known to the page only by a private token."""

    __tablename__ = "raters"
    __table_args__ = (Index(None, "task_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[str] = mapped_column(String, ForeignKey("rating_tasks.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String)
    token: Mapped[str] = mapped_column(String, unique=True)  # the secret in the rater's link


class RatingAssignment(Base):
    """An item given to a rater, with the side each output is shown on and its place in the rater's queue."""

    __tablename__ = "rating_assignments"
    __table_args__ = (Index(None, "rater_id", "sequence"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[str] = mapped_column(String, ForeignKey("rating_tasks.id", ondelete="CASCADE"))
    rater_id: Mapped[int] = mapped_column(Integer, ForeignKey("raters.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(Integer, ForeignKey("rating_items.id", ondelete="CASCADE"))
    sequence: Mapped[int] = mapped_column(Integer)  # 1, 2, ... in the rater's queue
    first_on_left: Mapped[bool]  # whether the item's first output is shown on the left


class Rating(Base):
    """What a rater said about one assignment, stored the moment it was given."""

    __tablename__ = "ratings"
    __table_args__ = (Index(None, "task_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[str] = mapped_column(String, ForeignKey("rating_tasks.id", ondelete="CASCADE"))
    assignment_id: Mapped[int] = mapped_column(Integer, ForeignKey("rating_assignments.id", ondelete="CASCADE"),
                                               unique=True)  # one rating per assignment: a double submission fails
    rater_id: Mapped[int] = mapped_column(Integer, ForeignKey("raters.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(Integer, ForeignKey("rating_items.id", ondelete="CASCADE"))
    left_model: Mapped[str] = mapped_column(String)  # the shown order, as it was shown
    right_model: Mapped[str] = mapped_column(String)
    choice: Mapped[str | None] = mapped_column(String)  # one of PAIRWISE_CHOICES (by side); None in scale mode
    left_score: Mapped[int | None] = mapped_column(Integer)  # 1-5; None in pairwise mode
    right_score: Mapped[int | None] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    time: Mapped[datetime] = mapped_column(default=utc_now)


# --- Rollout: deployments, their history, feedback and decisions (rollout/) -----------

DEPLOYMENT_MODES = ("shadow", "ab")
DEPLOYMENT_STATUSES = ("idle", "running")  # idle: the name serves production only
DECISIONS = ("promote", "rollback", "keep")


class Deployment(Base):
    """A stable name clients call, routed to a production model and, while a rollout runs, a candidate."""

    __tablename__ = "deployments"

    name: Mapped[str] = mapped_column(String, primary_key=True)
    production: Mapped[str] = mapped_column(String)  # a registry id, or a base model reference
    candidate: Mapped[str | None] = mapped_column(String)  # set while a rollout runs
    mode: Mapped[str | None] = mapped_column(String)  # one of DEPLOYMENT_MODES while a rollout runs
    percent: Mapped[float] = mapped_column(Float, default=0.0)  # A/B: share of subjects on the candidate
    settings: Mapped[JSONDict]  # metric, guardrails, delta, alpha, seed, auto, planned_n
    status: Mapped[str] = mapped_column(String)  # one of DEPLOYMENT_STATUSES
    rollout_id: Mapped[str | None] = mapped_column(String)  # ro-...: the running (or last) rollout
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)


class DeploymentEvent(Base):
    """A line in a deployment's history: created, started, promoted, rolled back, stopped."""

    __tablename__ = "deployment_events"
    __table_args__ = (Index(None, "deployment"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deployment: Mapped[str] = mapped_column(String, ForeignKey("deployments.name", ondelete="CASCADE"))
    time: Mapped[datetime] = mapped_column(default=utc_now)
    kind: Mapped[str] = mapped_column(String)  # create, start, promote, rollback, stop
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[JSONDict | None]  # the deployment's fields after the change


class Feedback(Base):
    """What a caller or a labeler said about one served request (by the request id the caller saw)."""

    __tablename__ = "feedback"
    __table_args__ = (Index(None, "request_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[str] = mapped_column(String)  # served_requests.request_id
    time: Mapped[datetime] = mapped_column(default=utc_now)
    score: Mapped[float | None] = mapped_column(Float)  # any number the caller scores with
    thumbs: Mapped[int | None] = mapped_column(Integer)  # 1 up, 0 down
    answer: Mapped[str | None] = mapped_column(Text)  # the correct answer or label
    source: Mapped[str] = mapped_column(String)  # api, import


class RolloutDecision(Base):
    """A promote, rollback or keep, with the evidence it rested on, linked to the models it concerns."""

    __tablename__ = "rollout_decisions"
    __table_args__ = (Index(None, "deployment"),)

    id: Mapped[str] = mapped_column(String, primary_key=True)  # dc-20261125-141502-a1b2
    deployment: Mapped[str] = mapped_column(String, ForeignKey("deployments.name", ondelete="CASCADE"))
    rollout_id: Mapped[str | None] = mapped_column(String)
    decision: Mapped[str] = mapped_column(String)  # one of DECISIONS
    automatic: Mapped[bool]  # taken by the server's --auto gate
    production: Mapped[str] = mapped_column(String)  # the model refs as they stood at the decision
    candidate: Mapped[str | None] = mapped_column(String)
    production_model_id: Mapped[str | None] = mapped_column(String, ForeignKey("model_versions.id", ondelete="SET NULL"))
    candidate_model_id: Mapped[str | None] = mapped_column(String, ForeignKey("model_versions.id", ondelete="SET NULL"))
    sentence: Mapped[str] = mapped_column(Text)
    evidence: Mapped[JSONDict | None]  # the gate's numbers: intervals, counts, guardrails
    time: Mapped[datetime] = mapped_column(default=utc_now)
