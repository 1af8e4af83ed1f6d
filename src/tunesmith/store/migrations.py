"""Schema migrations: an append-only list of small functions, each applied once per
database and recorded by name in the `_migrations` table.

To change the schema, add a function at the bottom decorated with `@migration`, and
change `schema.py` to match. Never edit or reorder a migration that has shipped: a
database out there already ran it. Each function gets alembic's `Operations` (`op`),
so the same code runs on SQLite and PostgreSQL; on SQLite, change or drop a column
inside `with op.batch_alter_table("table") as batch:` (SQLite's ALTER TABLE cannot,
so alembic rebuilds the table and copies the rows). `op.get_bind()` is the connection
for moving data. Write the types out (`sa.String`, ...) rather than importing them
from `schema.py`: a migration describes the schema as it was on the day it shipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .schema import UTCDateTime, utc_now

if TYPE_CHECKING:  # alembic is imported only when a migration is pending (about 0.1 s saved per command)
    from alembic.operations import Operations

Migration = Callable[["Operations"], None]

MIGRATIONS: list[Migration] = []

# The record of what ran; kept out of schema.py so that it exists before any migration.
migrations_table = sa.Table(
    "_migrations", sa.MetaData(),
    sa.Column("name", sa.String, primary_key=True),
    sa.Column("applied_at", UTCDateTime, nullable=False),
)


def migration(fn: Migration) -> Migration:
    """Append `fn` to MIGRATIONS; its __name__ is what `_migrations` records."""
    MIGRATIONS.append(fn)
    return fn


def apply_migrations(engine: Engine, migrations: list[Migration] | None = None) -> list[str]:
    """Apply, in order, the migrations this database has not recorded; return their names.

    Each migration runs in its own transaction together with its record, so a failure
    leaves the database as the previous migration left it. Two processes starting at
    once are safe: on SQLite every transaction takes the write lock first (see db.py),
    and a migration is looked up again under that lock before it runs.
    """
    migrations = MIGRATIONS if migrations is None else migrations
    with engine.begin() as conn:
        migrations_table.create(conn, checkfirst=True)
        recorded = set(conn.scalars(sa.select(migrations_table.c.name)))
    pending = [fn for fn in migrations if fn.__name__ not in recorded]
    if not pending:
        return []
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    applied = []
    for fn in pending:
        with engine.connect() as conn, _foreign_keys_off(conn), conn.begin():
            if _is_recorded(conn, fn.__name__):
                continue  # another process got there first
            fn(Operations(MigrationContext.configure(conn)))
            _check_foreign_keys(conn, fn.__name__)
            conn.execute(migrations_table.insert().values(name=fn.__name__, applied_at=utc_now()))
        applied.append(fn.__name__)
    return applied


def _is_recorded(conn: Connection, name: str) -> bool:
    return conn.scalar(sa.select(migrations_table.c.name).where(migrations_table.c.name == name)) is not None


@contextmanager
def _foreign_keys_off(conn: Connection) -> Iterator[None]:
    """SQLite's own recipe for altering a table: foreign keys off while the table is
    rebuilt (else dropping the old copy would fail or cascade into the rows that point at
    it), then a `foreign_key_check` before commit. The switch only works outside a
    transaction, so it goes straight to the driver's connection."""
    if conn.dialect.name != "sqlite":
        yield
        return
    driver_connection = conn.connection.driver_connection
    driver_connection.execute("PRAGMA foreign_keys = OFF")
    try:
        yield
    finally:
        driver_connection.execute("PRAGMA foreign_keys = ON")


def _check_foreign_keys(conn: Connection, name: str) -> None:
    if conn.dialect.name != "sqlite":
        return  # other databases kept checking all along
    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"migration {name} left rows that point at missing rows: {broken[:5]}")


# --- The migrations, oldest first. Append only. -------------------------------------


@migration
def m001_initial(op: Operations) -> None:
    """Dataset versions, jobs with their events and metrics, model versions."""
    op.create_table(
        "dataset_versions",
        sa.Column("id", sa.String, nullable=False),
        sa.Column("path", sa.String, nullable=False),
        sa.Column("manifest", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dataset_versions"),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.String, nullable=False),
        sa.Column("backend", sa.String, nullable=False),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("stop_reason", sa.String),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("run_dir", sa.String, nullable=False),
        sa.Column("base_model", sa.String, nullable=False),
        sa.Column("method", sa.String, nullable=False),
        sa.Column("dataset_version", sa.String),
        sa.Column("pid", sa.Integer),
        sa.Column("remote_name", sa.String),
        sa.Column("remote_state", sa.String),
        sa.Column("error", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
    )
    op.create_table(
        "job_events",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("job_id", sa.String, nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("data", sa.JSON),
        sa.PrimaryKeyConstraint("id", name="pk_job_events"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name="fk_job_events_job_id_jobs", ondelete="CASCADE"),
    )
    op.create_index("ix_job_events_job_id", "job_events", ["job_id"])
    op.create_table(
        "metrics",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("job_id", sa.String, nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("epoch", sa.Float, nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("train_loss", sa.Float),
        sa.Column("eval_loss", sa.Float),
        sa.Column("token_accuracy", sa.Float),
        sa.Column("eval_token_accuracy", sa.Float),
        sa.Column("learning_rate", sa.Float),
        sa.Column("tokens_per_s", sa.Float),
        sa.Column("extra", sa.JSON),
        sa.PrimaryKeyConstraint("id", name="pk_metrics"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name="fk_metrics_job_id_jobs", ondelete="CASCADE"),
    )
    op.create_index("ix_metrics_job_id_step", "metrics", ["job_id", "step"])
    op.create_table(
        "model_versions",
        sa.Column("id", sa.String, nullable=False),
        sa.Column("job_id", sa.String),
        sa.Column("name", sa.String),
        sa.Column("base_model", sa.String, nullable=False),
        sa.Column("method", sa.String, nullable=False),
        sa.Column("stage", sa.String, nullable=False),
        sa.Column("adapter_path", sa.String),
        sa.Column("merged_path", sa.String),
        sa.Column("remote_model", sa.String),
        sa.Column("remote_endpoint", sa.String),
        sa.Column("dataset_version", sa.String),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("final_metrics", sa.JSON),
        sa.Column("best_metrics", sa.JSON),
        sa.Column("stop_reason", sa.String),
        sa.Column("lineage", sa.JSON),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_model_versions"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name="fk_model_versions_job_id_jobs", ondelete="SET NULL"),
        sa.UniqueConstraint("name", name="uq_model_versions_name"),
    )


@migration
def m002_eval_and_serving(op: Operations) -> None:
    """Evaluation runs with their per-example items; requests the server answered."""
    op.create_table(
        "eval_runs",
        sa.Column("id", sa.String, nullable=False),
        sa.Column("model_id", sa.String),
        sa.Column("model_ref", sa.String, nullable=False),
        sa.Column("baseline_ref", sa.String),
        sa.Column("dataset_version", sa.String),
        sa.Column("data_path", sa.String, nullable=False),
        sa.Column("split", sa.String),
        sa.Column("metrics_kind", sa.String, nullable=False),
        sa.Column("examples", sa.Integer, nullable=False),
        sa.Column("verdict", sa.String),
        sa.Column("verdict_text", sa.Text),
        sa.Column("summary", sa.JSON),
        sa.Column("results_path", sa.String),
        sa.Column("report_path", sa.String),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_eval_runs"),
        sa.ForeignKeyConstraint(["model_id"], ["model_versions.id"], name="fk_eval_runs_model_id_model_versions",
                                ondelete="SET NULL"),
    )
    op.create_index("ix_eval_runs_model_id", "eval_runs", ["model_id"])
    op.create_table(
        "eval_items",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("eval_run_id", sa.String, nullable=False),
        sa.Column("example_id", sa.String, nullable=False),
        sa.Column("input_text", sa.Text, nullable=False),
        sa.Column("reference", sa.Text, nullable=False),
        sa.Column("outputs", sa.JSON, nullable=False),
        sa.Column("scores", sa.JSON),
        sa.PrimaryKeyConstraint("id", name="pk_eval_items"),
        sa.ForeignKeyConstraint(["eval_run_id"], ["eval_runs.id"], name="fk_eval_items_eval_run_id_eval_runs",
                                ondelete="CASCADE"),
    )
    op.create_index("ix_eval_items_eval_run_id", "eval_items", ["eval_run_id"])
    op.create_table(
        "served_requests",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("api", sa.String, nullable=False),
        sa.Column("model", sa.String, nullable=False),
        sa.Column("model_id", sa.String),
        sa.Column("route", sa.String),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("latency_s", sa.Float),
        sa.Column("prompt_tokens", sa.Integer),
        sa.Column("completion_tokens", sa.Integer),
        sa.Column("system_text", sa.Text),
        sa.Column("input_messages", sa.JSON),
        sa.Column("output_text", sa.Text),
        sa.Column("error", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_served_requests"),
    )
    op.create_index("ix_served_requests_time", "served_requests", ["time"])


@migration
def m003_human_rating(op: Operations) -> None:
    """Blind human rating: tasks, their items, raters with private tokens, assignments, ratings."""
    op.create_table(
        "rating_tasks",
        sa.Column("id", sa.String, nullable=False),
        sa.Column("eval_run_id", sa.String),
        sa.Column("mode", sa.String, nullable=False),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("models", sa.JSON, nullable=False),
        sa.Column("instructions", sa.Text),
        sa.Column("settings", sa.JSON, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="pk_rating_tasks"),
        sa.ForeignKeyConstraint(["eval_run_id"], ["eval_runs.id"], name="fk_rating_tasks_eval_run_id_eval_runs",
                                ondelete="SET NULL"),
    )
    op.create_table(
        "rating_items",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("task_id", sa.String, nullable=False),
        sa.Column("example_id", sa.String, nullable=False),
        sa.Column("input_text", sa.Text, nullable=False),
        sa.Column("reference", sa.Text),
        sa.Column("first_model", sa.String, nullable=False),
        sa.Column("second_model", sa.String, nullable=False),
        sa.Column("first_output", sa.Text, nullable=False),
        sa.Column("second_output", sa.Text, nullable=False),
        sa.Column("gold", sa.JSON),
        sa.PrimaryKeyConstraint("id", name="pk_rating_items"),
        sa.ForeignKeyConstraint(["task_id"], ["rating_tasks.id"], name="fk_rating_items_task_id_rating_tasks",
                                ondelete="CASCADE"),
    )
    op.create_index("ix_rating_items_task_id", "rating_items", ["task_id"])
    op.create_table(
        "raters",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("task_id", sa.String, nullable=False),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("token", sa.String, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_raters"),
        sa.ForeignKeyConstraint(["task_id"], ["rating_tasks.id"], name="fk_raters_task_id_rating_tasks",
                                ondelete="CASCADE"),
        sa.UniqueConstraint("token", name="uq_raters_token"),
    )
    op.create_index("ix_raters_task_id", "raters", ["task_id"])
    op.create_table(
        "rating_assignments",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("task_id", sa.String, nullable=False),
        sa.Column("rater_id", sa.Integer, nullable=False),
        sa.Column("item_id", sa.Integer, nullable=False),
        sa.Column("sequence", sa.Integer, nullable=False),
        sa.Column("first_on_left", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rating_assignments"),
        sa.ForeignKeyConstraint(["task_id"], ["rating_tasks.id"], name="fk_rating_assignments_task_id_rating_tasks",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["rater_id"], ["raters.id"], name="fk_rating_assignments_rater_id_raters",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["item_id"], ["rating_items.id"], name="fk_rating_assignments_item_id_rating_items",
                                ondelete="CASCADE"),
    )
    op.create_index("ix_rating_assignments_rater_id_sequence", "rating_assignments", ["rater_id", "sequence"])
    op.create_table(
        "ratings",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("task_id", sa.String, nullable=False),
        sa.Column("assignment_id", sa.Integer, nullable=False),
        sa.Column("rater_id", sa.Integer, nullable=False),
        sa.Column("item_id", sa.Integer, nullable=False),
        sa.Column("left_model", sa.String, nullable=False),
        sa.Column("right_model", sa.String, nullable=False),
        sa.Column("choice", sa.String),
        sa.Column("left_score", sa.Integer),
        sa.Column("right_score", sa.Integer),
        sa.Column("comment", sa.Text),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ratings"),
        sa.ForeignKeyConstraint(["task_id"], ["rating_tasks.id"], name="fk_ratings_task_id_rating_tasks",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["assignment_id"], ["rating_assignments.id"],
                                name="fk_ratings_assignment_id_rating_assignments", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["rater_id"], ["raters.id"], name="fk_ratings_rater_id_raters", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["item_id"], ["rating_items.id"], name="fk_ratings_item_id_rating_items",
                                ondelete="CASCADE"),
        sa.UniqueConstraint("assignment_id", name="uq_ratings_assignment_id"),
    )
    op.create_index("ix_ratings_task_id", "ratings", ["task_id"])


@migration
def m004_model_family(op: Operations) -> None:
    """Model versions get a family: at most one version per family may be in production
    (NULL: the family is the base model)."""
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("family", sa.String))
    op.create_index("ix_model_versions_family", "model_versions", ["family"])


@migration
def m005_rollout(op: Operations) -> None:
    """Rollout: deployments with their history, feedback on served requests, decisions; served
    requests learn the id the caller saw, the deployment, the rollout, the subject and the shadow pair."""
    op.create_table(
        "deployments",
        sa.Column("name", sa.String, nullable=False),
        sa.Column("production", sa.String, nullable=False),
        sa.Column("candidate", sa.String),
        sa.Column("mode", sa.String),
        sa.Column("percent", sa.Float, nullable=False),
        sa.Column("settings", sa.JSON, nullable=False),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("rollout_id", sa.String),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_deployments"),
    )
    op.create_table(
        "deployment_events",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("deployment", sa.String, nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("data", sa.JSON),
        sa.PrimaryKeyConstraint("id", name="pk_deployment_events"),
        sa.ForeignKeyConstraint(["deployment"], ["deployments.name"],
                                name="fk_deployment_events_deployment_deployments", ondelete="CASCADE"),
    )
    op.create_index("ix_deployment_events_deployment", "deployment_events", ["deployment"])
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("request_id", sa.String, nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("score", sa.Float),
        sa.Column("thumbs", sa.Integer),
        sa.Column("answer", sa.Text),
        sa.Column("source", sa.String, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_feedback"),
    )
    op.create_index("ix_feedback_request_id", "feedback", ["request_id"])
    op.create_table(
        "rollout_decisions",
        sa.Column("id", sa.String, nullable=False),
        sa.Column("deployment", sa.String, nullable=False),
        sa.Column("rollout_id", sa.String),
        sa.Column("decision", sa.String, nullable=False),
        sa.Column("automatic", sa.Boolean, nullable=False),
        sa.Column("production", sa.String, nullable=False),
        sa.Column("candidate", sa.String),
        sa.Column("production_model_id", sa.String),
        sa.Column("candidate_model_id", sa.String),
        sa.Column("sentence", sa.Text, nullable=False),
        sa.Column("evidence", sa.JSON),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rollout_decisions"),
        sa.ForeignKeyConstraint(["deployment"], ["deployments.name"],
                                name="fk_rollout_decisions_deployment_deployments", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["production_model_id"], ["model_versions.id"],
                                name="fk_rollout_decisions_production_model_id_model_versions", ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["candidate_model_id"], ["model_versions.id"],
                                name="fk_rollout_decisions_candidate_model_id_model_versions", ondelete="SET NULL"),
    )
    op.create_index("ix_rollout_decisions_deployment", "rollout_decisions", ["deployment"])
    with op.batch_alter_table("served_requests") as batch:
        for column in ("request_id", "deployment", "rollout_id", "subject", "pair_id"):
            batch.add_column(sa.Column(column, sa.String))
    op.create_index("ix_served_requests_request_id", "served_requests", ["request_id"])
    op.create_index("ix_served_requests_deployment", "served_requests", ["deployment"])


@migration
def m006_output_space(op: Operations) -> None:
    """Model versions keep the output space of their training data (data/output_space.py):
    the labels, template or JSON fields decoding is held to. NULL: free text, or not known."""
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("output_space", sa.JSON))
