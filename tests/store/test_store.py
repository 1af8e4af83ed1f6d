"""The state store on a real SQLite file per test (conftest.py gives each test its own TUNESMITH_HOME)."""

from __future__ import annotations

import io
import multiprocessing
import os
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy.exc import IntegrityError, StatementError

from tunesmith.errors import BadInputError, TunesmithError
from tunesmith.store import db, queries, schema
from tunesmith.store.migrations import MIGRATIONS, apply_migrations, migrations_table
from tunesmith.store.schema import Base

SPEC = {"base_model": "smollm2-135m", "method": "lora", "learning_rate": 2e-4}


def a_job(**overrides) -> schema.Job:
    fields = dict(backend="local", spec=SPEC, run_dir="/runs/x", base_model="smollm2-135m", method="lora")
    return queries.create_job(**{**fields, **overrides})


# --- Where the database lives --------------------------------------------------------


def test_default_database_is_sqlite_in_tunesmith_home_with_wal_and_foreign_keys(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path / "home"))
    assert db.tunesmith_home() == (tmp_path / "home").resolve()
    assert db.database_url() == f"sqlite:///{(tmp_path / 'home' / 'tunesmith.db').resolve()}"
    a_job()
    assert (tmp_path / "home" / "tunesmith.db").is_file()
    with db.get_engine().connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_database_url_env_var_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNESMITH_DATABASE_URL", f"sqlite:///{tmp_path / 'team.db'}")
    a_job()
    assert (tmp_path / "team.db").is_file()


def test_a_database_that_cannot_be_opened_is_a_user_error_without_the_password():
    with pytest.raises(TunesmithError) as caught:
        db.get_engine("postgresql+nosuchdriver://alice:s3cret@db.example/tunes")
    assert "cannot open the database postgresql+nosuchdriver://alice:***@db.example/tunes" in caught.value.message
    assert "s3cret" not in str(caught.value)
    assert "TUNESMITH_DATABASE_URL" in caught.value.hint


def test_an_unparseable_url_is_a_user_error_without_the_password():
    with pytest.raises(TunesmithError, match="cannot open the database alice:\\*\\*\\*@nowhere") as caught:
        db.get_engine("alice:s3cret@nowhere")
    assert "s3cret" not in str(caught.value)


def test_a_sqlite_file_in_a_missing_folder_is_a_user_error(tmp_path):
    with pytest.raises(TunesmithError, match="unable to open database file"):
        db.get_engine(f"sqlite:///{tmp_path / 'missing' / 'tunesmith.db'}")


# --- Jobs ----------------------------------------------------------------------------


def test_new_ids_have_the_documented_shape_and_differ():
    ids = {queries.new_id("job") for _ in range(50)}
    assert len(ids) == 50
    assert all(len(i) == len("job-20261125-141502-a1b2") and i.startswith("job-") for i in ids)


def test_create_list_and_get_jobs():
    first = a_job()
    second = a_job(backend="vertex", status="running")
    assert [j.id for j in queries.list_jobs()] == [second.id, first.id]  # newest first
    assert [j.id for j in queries.list_jobs(status="running")] == [second.id]
    assert [j.id for j in queries.list_jobs(limit=1)] == [second.id]

    got = queries.get_job(first.id)
    assert (got.backend, got.status, got.spec, got.run_dir) == ("local", "queued", SPEC, "/runs/x")


def test_get_job_by_unique_prefix_and_errors_for_ambiguous_or_missing():
    jobs = [a_job() for _ in range(3)]
    shared = os.path.commonprefix([j.id for j in jobs])
    assert queries.get_job(jobs[0].id).id == jobs[0].id

    with pytest.raises(BadInputError, match="matches several jobs") as ambiguous:
        queries.get_job(shared)
    assert all(j.id in ambiguous.value.message for j in jobs)

    with pytest.raises(BadInputError, match="no job 'job-1999'") as missing:
        queries.get_job("job-1999")
    assert "tunesmith jobs list" in missing.value.hint

    unique = next(j.id[:i] for j in jobs for i in range(len(shared) + 1, len(j.id))
                  if sum(k.id.startswith(j.id[:i]) for k in jobs) == 1)
    assert queries.get_job(unique).id.startswith(unique)


def test_a_prefix_with_sql_wildcards_matches_literally():
    a_job()
    with pytest.raises(BadInputError, match="no job"):
        queries.get_job("job-%")


def test_unknown_backend_or_status_is_bad_input():
    with pytest.raises(BadInputError, match="unknown backend 'modal'"):
        a_job(backend="modal")
    job = a_job()
    with pytest.raises(BadInputError, match="unknown job status 'done'") as caught:
        queries.transition_job(job.id, "done")
    assert "succeeded" in caught.value.hint
    with pytest.raises(TypeError, match="created_at"):
        queries.set_job_fields(job.id, created_at=datetime.now(timezone.utc))
    with pytest.raises(TypeError, match="status"):
        queries.set_job_fields(job.id, status="running")  # the status moves through transition_job only


def test_status_changes_add_events_and_stamp_start_and_end():
    job = a_job()
    queries.transition_job(job.id, "running", pid=4242)
    queries.set_job_fields(job.id, remote_state="TUNING")  # no status change, no status event
    done = queries.transition_job(job.id, "succeeded", stop_reason="stopped_early")

    events = queries.job_events(job.id)
    assert [(e.kind, e.message) for e in events] == [
        ("status", "queued"),
        ("status", "queued → running"),
        ("status", "running → succeeded (stopped_early)"),
    ]
    assert events[-1].data == {"from": "running", "to": "succeeded", "stop_reason": "stopped_early"}
    assert done.pid == 4242 and done.remote_state == "TUNING"
    assert done.created_at <= done.started_at <= done.ended_at <= done.updated_at


def test_events_follow_from_the_last_id_seen():
    job = a_job()
    queries.add_event(job.id, "log", "step 1")
    seen = queries.job_events(job.id)
    queries.add_event(job.id, "checkpoint", "saved checkpoint-10", {"path": "/runs/x/checkpoint-10"})
    new = queries.job_events(job.id, after_id=seen[-1].id)
    assert [(e.kind, e.data) for e in new] == [("checkpoint", {"path": "/runs/x/checkpoint-10"})]


def test_an_event_for_a_missing_job_is_refused():
    with pytest.raises(IntegrityError):
        queries.add_event("job-nope", "log", "orphan")


def test_metrics_come_back_by_step_with_unknown_names_in_extra():
    job = a_job()
    queries.add_metrics(job.id, 20, 0.2, train_loss=1.5, grad_norm=0.7)
    queries.add_metrics(job.id, 10, 0.1, train_loss=2.0, learning_rate=2e-4)
    queries.add_metrics(job.id, 20, 0.2, eval_loss=1.8, eval_token_accuracy=0.61)

    rows = queries.job_metrics(job.id)
    assert [(m.step, m.train_loss, m.eval_loss) for m in rows] == [(10, 2.0, None), (20, 1.5, None), (20, None, 1.8)]
    assert rows[1].extra == {"grad_norm": 0.7}
    assert rows[0].extra is None and rows[0].learning_rate == 2e-4


def test_times_are_timezone_aware_utc_and_naive_times_are_refused():
    job = a_job()
    later = datetime(2026, 11, 25, 15, 0, tzinfo=timezone(timedelta(hours=1)))
    with queries.session_scope() as s:
        s.get(schema.Job, job.id).started_at = later
    got = queries.get_job(job.id)
    assert got.started_at == later and got.started_at.tzinfo == timezone.utc
    assert got.created_at.tzinfo == timezone.utc
    with pytest.raises(StatementError, match="naive datetime"), queries.session_scope() as s:
        s.get(schema.Job, job.id).ended_at = datetime(2026, 11, 25, 15, 0)


@pytest.mark.parametrize("path, refused", [
    (["running", "succeeded"], "running"),  # a finished job does not run again ...
    (["running", "failed"], "succeeded"),  # ... nor change its verdict
    (["running"], "queued"),  # a running job is cancelled or ends; it is not queued again
    ([], "queued"),
])
def test_the_job_life_cycle_is_enforced_in_the_store(path, refused):
    job = a_job()
    for status in path:
        queries.transition_job(job.id, status)
    before = len(queries.job_events(job.id))
    with pytest.raises(queries.JobStateError, match=f"cannot go from .* to {refused}") as caught:
        queries.transition_job(job.id, refused)
    assert caught.value.exit_code == 1 and len(queries.job_events(job.id)) == before  # nothing half-written
    assert queries.get_job(job.id).status == (path[-1] if path else "queued")


def test_failed_and_cancelled_jobs_go_back_to_the_queue_to_resume():
    job = a_job()
    for status in ("running", "cancelled", "queued", "running", "failed", "queued", "running", "succeeded"):
        job = queries.transition_job(job.id, status, stop_reason="completed" if status == "succeeded" else None)
    assert job.status == "succeeded" and job.stop_reason == "completed" and job.ended_at is not None


def test_rows_are_readable_after_their_session_closed_and_convert_to_dicts():
    job = a_job(dataset_version="abc123")
    row = queries.get_job(job.id).to_dict()
    assert row["id"] == job.id and row["dataset_version"] == "abc123" and row["spec"] == SPEC
    assert datetime.fromisoformat(row["created_at"]).tzinfo is not None


def test_functions_join_a_callers_session_and_leave_the_commit_to_it():
    with pytest.raises(RuntimeError):
        with queries.session_scope() as session:
            job = queries.create_job("local", SPEC, "/runs/y", "smollm2-135m", "lora", session=session)
            assert queries.get_job(job.id, session=session).id == job.id
            raise RuntimeError("roll it all back")
    assert queries.list_jobs() == []


def test_dataset_versions_are_recorded_once():
    manifest = {"dataset_version": "0123456789abcdef", "counts": {"train": 80}}
    queries.record_dataset_version("0123456789abcdef", "/data/v1", manifest)
    moved = queries.record_dataset_version("0123456789abcdef", "/data/moved", manifest)
    assert (moved.path, moved.manifest) == ("/data/moved", manifest)
    with queries.session_scope() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(schema.DatasetVersion)) == 1


# --- Model registry ------------------------------------------------------------------


def register(**overrides) -> schema.ModelVersion:
    fields = dict(base_model="smollm2-135m", method="lora", spec=SPEC)
    return queries.register_model(**{**fields, **overrides})


def test_register_and_look_up_models_by_id_prefix_and_alias():
    job = a_job()
    model = register(job_id=job.id, name="tickets-v1", adapter_path="/runs/x/adapter",
                     final_metrics={"eval_loss": 1.2}, best_metrics={"eval_loss": 1.1},
                     stop_reason="stopped_early", lineage={"seed": 7})
    other = register()
    assert model.id.startswith("mv-") and model.stage == "candidate"
    assert queries.get_model("tickets-v1").id == model.id
    assert queries.get_model(model.id).best_metrics == {"eval_loss": 1.1}
    assert [m.id for m in queries.list_models()] == [other.id, model.id]
    with pytest.raises(BadInputError, match="no model version 'tickets-v2'") as missing:
        queries.get_model("tickets-v2")
    assert "tunesmith models list" in missing.value.hint


def test_model_names_are_unique_and_cannot_look_like_ids():
    taken = register(name="tickets-v1")
    with pytest.raises(BadInputError, match=f"taken by {taken.id}"):
        register(name="tickets-v1")
    with pytest.raises(BadInputError, match="cannot name a model"):
        register(name="mv-2026")
    register(), register()  # unnamed versions never clash


def test_stages_are_validated():
    model = register(name="tickets-v1")
    assert queries.set_model_stage("tickets-v1", "production").stage == "production"
    assert queries.get_model(model.id).stage == "production"
    with pytest.raises(BadInputError, match="unknown stage 'prod'") as caught:
        queries.set_model_stage(model.id, "prod")
    assert "production" in caught.value.hint


# --- Migrations ----------------------------------------------------------------------


def test_migrations_run_once():
    engine = db.get_engine()  # the first use applied every migration
    with engine.connect() as conn:
        before = conn.execute(sa.select(migrations_table)).all()
    assert [name for name, _ in before] == [fn.__name__ for fn in MIGRATIONS]

    assert apply_migrations(engine) == []
    with engine.connect() as conn:
        assert conn.execute(sa.select(migrations_table)).all() == before


def test_the_migrated_schema_is_what_the_orm_classes_describe():
    with db.get_engine().connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [d for d in differences if not (d[0] == "remove_table" and d[1].name == "_migrations")] == []


def test_migrations_also_render_for_postgresql():
    """Offline: the DDL each migration would send to PostgreSQL, without a server."""
    context = MigrationContext.configure(dialect_name="postgresql", opts={"as_sql": True, "output_buffer": io.StringIO()})
    for fn in MIGRATIONS:
        fn(Operations(context))
    ddl = context.opts["output_buffer"].getvalue()
    assert "CREATE TABLE jobs" in ddl and "TIMESTAMP WITH TIME ZONE" in ddl and "ON DELETE CASCADE" in ddl


def m900_add_job_priority(op: Operations) -> None:
    """A later migration as a future issue would write it: rebuild `jobs` with a new column."""
    with op.batch_alter_table("jobs", recreate="always") as batch:  # always: the hard case on SQLite
        batch.add_column(sa.Column("priority", sa.Integer, nullable=False, server_default="0"))
    op.get_bind().execute(sa.text("UPDATE jobs SET priority = 5 WHERE status = 'running'"))


def test_a_later_migration_upgrades_in_place_and_keeps_every_row():
    queued, running = a_job(), a_job(status="running")
    queries.add_event(running.id, "log", "step 1")
    queries.add_metrics(running.id, 1, 0.01, train_loss=2.5)
    register(job_id=running.id, name="kept")
    engine = db.get_engine()

    assert apply_migrations(engine, [*MIGRATIONS, m900_add_job_priority]) == ["m900_add_job_priority"]
    assert apply_migrations(engine, [*MIGRATIONS, m900_add_job_priority]) == []

    with engine.connect() as conn:
        priorities = dict(conn.execute(sa.text("SELECT id, priority FROM jobs")).all())
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    assert priorities == {queued.id: 0, running.id: 5}
    assert [e.message for e in queries.job_events(running.id)] == ["running", "step 1"]
    assert [m.train_loss for m in queries.job_metrics(running.id)] == [2.5]
    assert queries.get_model("kept").job_id == running.id == queries.get_job(running.id).id
    with pytest.raises(IntegrityError):  # the rebuilt table is still the target of foreign keys
        queries.add_event("job-nope", "log", "orphan")


def m901_half_done(op: Operations) -> None:
    op.create_table("half_done", sa.Column("id", sa.Integer, primary_key=True))
    raise RuntimeError("a bug in the migration")


def test_a_failing_migration_leaves_nothing_behind():
    engine = db.get_engine()
    with pytest.raises(RuntimeError, match="a bug"):
        apply_migrations(engine, [*MIGRATIONS, m901_half_done])
    with engine.connect() as conn:
        assert not sa.inspect(conn).has_table("half_done")
        assert "m901_half_done" not in set(conn.scalars(sa.select(migrations_table.c.name)))


# --- Two processes, one SQLite file --------------------------------------------------

WRITES_PER_PROCESS = 200


def _write_events(home: str, job_id: str, worker: str, start) -> None:
    """Runs in a child process: appends events and updates the job, each in its own transaction."""
    os.environ["TUNESMITH_HOME"] = home
    start.wait()
    for i in range(WRITES_PER_PROCESS):
        queries.add_event(job_id, "log", f"{worker} {i}")
        queries.set_job_fields(job_id, remote_state=f"{worker} {i}")  # reads, then writes


def test_two_processes_write_to_one_database_at_once():
    job = a_job()
    home = os.environ["TUNESMITH_HOME"]
    spawn = multiprocessing.get_context("spawn")  # a fresh interpreter, like a background training process
    start = spawn.Barrier(2)
    workers = [spawn.Process(target=_write_events, args=(home, job.id, name, start)) for name in ("a", "b")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [w.exitcode for w in workers] == [0, 0]  # a "database is locked" error would exit 1

    messages = [e.message for e in queries.job_events(job.id) if e.kind == "log"]
    assert len(messages) == 2 * WRITES_PER_PROCESS
    for name in ("a", "b"):  # each writer's events in the order it wrote them
        assert [m for m in messages if m.startswith(name)] == [f"{name} {i}" for i in range(WRITES_PER_PROCESS)]
