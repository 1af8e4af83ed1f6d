"""Jobs: a training run with a folder, a row in the store, and a life cycle.

    queued -> running -> succeeded | failed | cancelled   (failed or cancelled -> queued: resume)

This module is the one job runner. It creates jobs, drives their backend (train/backends/,
one Protocol: check, start, follow, refresh, cancel), applies each `Update` the backend gives
through the store's checked transitions, and registers the model a succeeded job leaves.
Backends never write job rows or register models.

A local job runs in the foreground (`run_job`) or in a background process that outlives the
command (`start_job(..., detach=True)`, which starts `python -m tunesmith.train.worker`). Its
folder `$TUNESMITH_HOME/runs/<job-id>/` holds the resolved spec, the log, metrics.jsonl,
checkpoints and the result. A job whose process died (a crash, `kill -9`) is marked failed the
next time anyone looks, and `resume_job` continues it from its last checkpoint. A managed job
(`backend: vertex`) runs at Vertex AI; `get_job` polls it."""

from __future__ import annotations

import json
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..data.output_space import OUTPUT_SPACE_FILE, dataset_output_space
from ..errors import BadInputError, TunesmithError
from ..fileio import atomic_write_text
from ..lazy import yaml
from ..paths import runs_dir
from ..store import db, queries, schema
from .backends import Backend, TrainedModel, Update, backend_for
from .backends.local import LocalBackend
from .recorder import LOG_FILE, Display, Recorder
from .spec import LocalSpec, TrainSpec, VertexSpec, parse_spec

SPEC_FILE = "spec.yaml"


@dataclass
class TrainResult:
    """What `train` returns: the job, and the model it registered (None unless it succeeded)."""

    job: Any
    model: Any = None


def train(spec: TrainSpec, *, detach: bool = False, display: Display | None = None,
          confirm: Callable | None = None) -> TrainResult | None:
    """Tune a model as `spec` says and register the result. `display` sees every event and
    metric row; for a vertex spec `confirm` sees the cost estimate before anything is uploaded
    and may decline (then there is no job: None). With `detach` it returns once the job runs
    elsewhere (a background process, or Vertex AI)."""
    job = start_job(spec, detach=detach, display=display, confirm=confirm)
    return None if job is None else TrainResult(job, registered_model(job.id))


def registered_model(job_id: str):
    """The model a job registered, or None."""
    event = next((e for e in reversed(queries.job_events(job_id)) if e.kind == "registered"), None)
    return queries.get_model(event.data["model_id"]) if event else None


def start_job(spec: TrainSpec, detach: bool = False, display: Display | None = None,
              confirm: Callable | None = None):
    """Create and run a job; None when the backend's check declined (nothing was created)."""
    backend = backend_for(spec.backend)
    if not backend.check(spec, display, confirm):  # before a job exists: what cannot run is bad usage
        return None
    job = create_job(spec)
    return _drive(job, spec, backend, Recorder(job.id, job.run_dir, display), resume=False, detach=detach)


def create_job(spec: TrainSpec):
    """The job row and its folder with the resolved spec; nothing runs yet."""
    import json

    manifest = json.loads((spec.data / "manifest.json").read_text(encoding="utf-8"))
    version = manifest.get("dataset_version")
    queries.record_dataset_version(version, str(spec.data.resolve()), manifest)
    resolved = spec.resolved()
    job = queries.create_job(spec.backend, resolved, run_dir="", base_model=spec.base_model, method=spec.method,
                             dataset_version=version)
    run_dir = runs_dir() / job.id
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / SPEC_FILE, yaml.safe_dump(resolved, sort_keys=False))
    return queries.set_job_fields(job.id, run_dir=str(run_dir))


def run_job(job_id: str, resume: bool = False, display: Display | None = None, launched: bool = False):
    """Run a local job in this process, from start (or its last checkpoint) to a final status.
    `launched`: this process is one rank of a multi-process job, started by `accelerate launch`."""

    job = queries.get_job(job_id)
    spec = read_spec(Path(job.run_dir))
    backend = LocalBackend(launched=launched)
    if not backend.records:  # a rank other than 0 trains in step with rank 0 and records nothing
        backend.train_silently(job, spec, resume)
        return job
    return _drive(job, spec, backend, Recorder(job.id, job.run_dir, display), resume=resume, detach=False)


def read_spec(run_dir: Path) -> LocalSpec | VertexSpec:
    return parse_spec(yaml.safe_load((run_dir / SPEC_FILE).read_text(encoding="utf-8")))


def _drive(job, spec: TrainSpec, backend: Backend, recorder: Recorder, *, resume: bool, detach: bool):
    """Start the job, then (unless detached) follow it to its end, applying every update."""
    try:
        for update in backend.start(job, spec, recorder, resume=resume, detach=detach):
            job = _apply(job, update, recorder)
        if not detach and job.status not in schema.FINISHED_JOB_STATUSES:
            for update in backend.follow(job, spec, recorder, resume=resume):
                job = _apply(job, update, recorder)
    except TunesmithError as exc:
        recorder.event("error", exc.message)
        job = _apply(job, Update("failed", "error", str(exc), {"pid": None}), recorder)
    except Exception as exc:  # a bug or a library failure: the traceback in the log, a sentence in the store
        recorder.log.error("%s", traceback.format_exc())
        job = _apply(job, Update("failed", "error", f"{type(exc).__name__}: {exc} (traceback in "
                                                    f"{Path(job.run_dir) / LOG_FILE})", {"pid": None}), recorder)
    return queries.get_job(job.id)


def _apply(job, update: Update, recorder: Recorder):
    """Bring the job's row to `update`: the one place a job changes state and a model is registered."""
    job = queries.get_job(job.id)  # another process (a `jobs show`, a cancel) may have moved it meanwhile
    if job.status in schema.FINISHED_JOB_STATUSES:
        return job
    if update.status == job.status:
        return queries.set_job_fields(job.id, **update.fields) if update.fields else job
    fields = {**update.fields, **({"pid": None} if update.status in schema.FINISHED_JOB_STATUSES else {})}
    if update.status != "succeeded":
        if update.error:
            recorder.log.info("%s: %s", update.stop_reason or update.status, update.error)
        return queries.transition_job(job.id, update.status, stop_reason=update.stop_reason, error=update.error,
                                      **fields)
    with db.session_scope() as session:  # the state and the registration together, or neither
        done = queries.transition_job(job.id, "succeeded", stop_reason=update.stop_reason, session=session, **fields)
        model = _register(done, update.model, recorder, session)
    recorder.event("registered", f"registered model {model.id}" + (f": endpoint {model.remote_endpoint}"
                                                                    if model.remote_endpoint else ""),
                   {"model_id": model.id, "remote_model": model.remote_model,
                    "remote_endpoint": model.remote_endpoint})
    return queries.get_job(job.id)


def _register(job, trained: TrainedModel, recorder: Recorder, session):
    """The model version of a succeeded job, with its lineage; without the alias when another
    model took it while the job ran."""
    fields = dict(base_model=job.base_model, method=job.method, spec=job.spec, job_id=job.id,
                  adapter_path=trained.adapter_path, merged_path=trained.merged_path,
                  remote_model=trained.remote_model, remote_endpoint=trained.remote_endpoint,
                  dataset_version=job.dataset_version, final_metrics=trained.final_metrics,
                  best_metrics=trained.best_metrics, stop_reason=job.stop_reason,
                  lineage={"data": job.spec["data"], **trained.lineage})
    space = _output_space(job, trained)
    if space is not None:
        fields["output_space"] = space
    name = job.spec.get("name")
    if name and queries.model_name_taken(name, session=session):
        recorder.event("warning", f"the name {name!r} was taken while the job ran; registered without a name")
        name = None
    return queries.register_model(name=name, session=session, **fields)


def _output_space(job, trained: TrainedModel) -> dict | None:
    """The training data's output space, written beside the weights (output_space.json) and
    returned for the registry row, so evaluation and serving hold decoding to it."""
    data = Path(job.spec["data"])
    space = dataset_output_space(data) if data.is_dir() else None
    if space is None:
        return None
    text = json.dumps(space.to_dict(), indent=2, ensure_ascii=False) + "\n"
    for folder in (job.run_dir, trained.adapter_path, trained.merged_path):
        if folder and Path(folder).is_dir():
            atomic_write_text(Path(folder) / OUTPUT_SPACE_FILE, text)
    return space.to_dict()


# --- looking at, cancelling and resuming jobs -------------------------------------------------


def refresh(job, remote: bool = True):
    """Bring a job that has not ended up to date: a local job whose process is gone died without
    saying so; a managed job is polled at Vertex AI (unless `remote` is False)."""
    if job.status in schema.FINISHED_JOB_STATUSES:
        return job
    recorder = Recorder(job.id, job.run_dir)
    update = backend_for(job.backend).refresh(job, recorder, remote=remote)
    return _apply(job, update, recorder) if update is not None else job


def get_job(id_or_prefix: str):
    return refresh(queries.get_job(id_or_prefix))


def list_jobs(limit: int = 50, status: str | None = None):
    return [refresh(job, remote=False) for job in queries.list_jobs(limit=limit, status=status)]


def follow_job(id_or_prefix: str, display: Display | None = None, sleep: Callable[[float], None] = time.sleep):
    """Follow a job that runs elsewhere (at Vertex AI) from this process until it ends, polling
    with backoff; Ctrl-C stops following, not the job. A local job is followed through its log
    (`tunesmith jobs logs JOB --follow`)."""
    job = queries.get_job(id_or_prefix)
    backend = backend_for(job.backend)
    if not backend.runs_remotely:
        raise BadInputError(f"job {job.id} runs on this machine; follow its log instead",
                            f"tunesmith jobs logs {job.id} --follow")
    recorder = Recorder(job.id, job.run_dir, display)
    for update in backend.follow(job, None, recorder, resume=False, sleep=sleep):
        job = _apply(job, update, recorder)
    return queries.get_job(job.id)


def cancel_job(id_or_prefix: str):
    """Stop a job cleanly: a local run saves a checkpoint and records `cancelled`; Vertex AI is
    asked to cancel, which it does a little later."""
    job = get_job(id_or_prefix)
    if job.status in schema.FINISHED_JOB_STATUSES:
        raise BadInputError(f"job {job.id} has already ended ({job.status})")
    recorder = Recorder(job.id, job.run_dir)
    update = backend_for(job.backend).cancel(job, recorder)
    job = _apply(job, update, recorder) if update is not None else queries.get_job(job.id)
    return refresh(job)


def resume_job(id_or_prefix: str, detach: bool = False, display: Display | None = None):
    """Continue a failed or cancelled local job from its last checkpoint."""
    job = get_job(id_or_prefix)
    if job.backend == "vertex":
        raise BadInputError(f"job {job.id} ran at Vertex AI, which cannot resume a tuning job",
                            "start a new one with `tunesmith train` (the upload is skipped: same content)")
    if job.status in ("running", "succeeded", "queued"):
        raise BadInputError(f"job {job.id} is {job.status}; only a failed or cancelled job can be resumed")
    job = queries.transition_job(job.id, "queued")
    spec = read_spec(Path(job.run_dir))
    return _drive(job, spec, backend_for(job.backend), Recorder(job.id, job.run_dir, display), resume=True,
                  detach=detach)
