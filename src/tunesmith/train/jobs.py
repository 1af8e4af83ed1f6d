"""Jobs: a training run with a folder, a row in the store, and a life cycle.

    queued -> running -> succeeded | failed | cancelled

A job runs in the foreground (`run_job`) or in a background process that outlives the
command (`start_job(..., detach=True)`, which starts `python -m tunesmith.train.worker`).
Its folder `$TUNESMITH_HOME/runs/<job-id>/` holds the resolved spec, the log,
metrics.jsonl, checkpoints and the result. A job whose process died (a crash, `kill -9`)
is marked failed the next time anyone looks, and `resume_job` continues it from its last
checkpoint."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Callable

import yaml

from ..errors import BadInputError, TunesmithError
from ..fileio import atomic_write_text
from ..store import queries
from ..store.db import tunesmith_home
from .spec import TrainSpec

SPEC_FILE = "spec.yaml"
LOG_FILE = "train.log"
CANCEL_WAIT_S = 60


def runs_dir() -> Path:
    return tunesmith_home() / "runs"


def create_job(spec: TrainSpec):
    """The job row and its folder with the resolved spec; nothing runs yet."""
    import json

    manifest = json.loads((spec.data / "manifest.json").read_text(encoding="utf-8"))
    version = manifest.get("dataset_version")
    queries.record_dataset_version(version, str(spec.data.resolve()), manifest)
    resolved = spec.resolved()
    job = queries.create_job("local", resolved, run_dir="", base_model=spec.base_model, method=spec.method,
                             dataset_version=version)
    run_dir = runs_dir() / job.id
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / SPEC_FILE, yaml.safe_dump(resolved, sort_keys=False))
    return queries.update_job(job.id, run_dir=str(run_dir))


def start_job(spec: TrainSpec, detach: bool = False, display: Callable[[dict], None] | None = None):
    from .backends.local import check_hardware

    check_hardware(spec)  # before a job exists: a run this machine cannot do is bad usage, not a failed job
    job = create_job(spec)
    if detach:
        return spawn_worker(job.id)
    return run_job(job.id, display=display)


def spawn_worker(job_id: str, resume: bool = False):
    """Run the job in a new process session, so it survives the terminal that started it."""
    job = queries.get_job(job_id)
    log = open(Path(job.run_dir) / LOG_FILE, "ab")
    command = [sys.executable, "-m", "tunesmith.train.worker", job.id] + (["--resume"] if resume else [])
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    log.close()
    return queries.update_job(job.id, pid=process.pid)


def run_job(job_id: str, resume: bool = False, display: Callable[[dict], None] | None = None):
    """Run a job in this process, from start (or its last checkpoint) to a final status."""
    from .backends import local

    job = queries.get_job(job_id)
    run_dir = Path(job.run_dir)
    spec = TrainSpec(**yaml.safe_load((run_dir / SPEC_FILE).read_text(encoding="utf-8")))
    logger = _file_logger(run_dir)
    queries.update_job(job.id, status="running", pid=os.getpid(), stop_reason=None, error=None)
    log_display = _logging_display(logger, display)
    try:
        outcome = local.run(job.id, spec, run_dir, resume=resume, display=log_display)
    except TunesmithError as exc:
        logger.error("%s", exc)
        return queries.update_job(job.id, status="failed", stop_reason="error", error=str(exc), pid=None)
    except Exception as exc:  # a bug or a library failure: keep the traceback in the log, the sentence in the store
        logger.error("%s", traceback.format_exc())
        return queries.update_job(job.id, status="failed", stop_reason="error", pid=None,
                                  error=f"{type(exc).__name__}: {exc} (traceback in {run_dir / LOG_FILE})")
    logger.info("%s: %s", outcome.stop_reason, outcome.message)
    if outcome.stop_reason == "cancelled":
        return queries.update_job(job.id, status="cancelled", stop_reason="cancelled", pid=None)
    if outcome.weights_dir is None:
        return queries.update_job(job.id, status="failed", stop_reason=outcome.stop_reason, error=outcome.message,
                                  pid=None)
    model = queries.register_model(
        base_model=spec.base_model, method=spec.method, spec=spec.resolved(), job_id=job.id, name=spec.name,
        adapter_path=str(outcome.weights_dir) if spec.method != "full" else None,
        merged_path=str(outcome.weights_dir) if spec.method == "full" else None,
        dataset_version=job.dataset_version, final_metrics=outcome.final_metrics, best_metrics=outcome.best_metrics,
        stop_reason=outcome.stop_reason, lineage={"data": str(spec.data), "evidence": outcome.evidence or None},
    )
    queries.add_event(job.id, "registered", f"registered model {model.id}", {"model_id": model.id})
    logger.info("registered model %s", model.id)
    return queries.update_job(job.id, status="succeeded", stop_reason=outcome.stop_reason, pid=None)


def _file_logger(run_dir: Path) -> logging.Logger:
    logger = logging.getLogger(f"tunesmith.job.{run_dir.name}")
    if not logger.handlers:
        handler = logging.FileHandler(run_dir / LOG_FILE, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger


def _logging_display(logger: logging.Logger, display: Callable[[dict], None] | None) -> Callable[[dict], None]:
    """Every metric row and event goes to the job's log; the terminal display gets them too."""

    def show(row: dict) -> None:
        if "event" in row:
            logger.info("%s: %s", row["event"], row["message"])
        else:
            logger.info("step %s/%s epoch %.2f %s", row["step"], row.get("max_steps", "?"), row["epoch"],
                        " ".join(f"{k} {v:.4g}" for k, v in row.items()
                                 if k not in ("step", "epoch", "time", "max_steps") and isinstance(v, float)))
        if display:
            display(row)

    return show


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by its parent) is not alive
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return True


def refresh(job):
    """A running job whose process is gone died without saying so: record that."""
    if job.status == "running" and job.backend == "local" and not pid_alive(job.pid):
        return queries.update_job(job.id, status="failed", stop_reason="process_died", pid=None,
                                  error="the training process ended without finishing (crash or kill); "
                                        f"`tunesmith jobs resume {job.id}` continues from the last checkpoint")
    return job


def get_job(id_or_prefix: str):
    return refresh(queries.get_job(id_or_prefix))


def list_jobs(limit: int = 50):
    return [refresh(job) for job in queries.list_jobs(limit=limit)]


def cancel_job(id_or_prefix: str, wait_s: float = CANCEL_WAIT_S):
    """Stop a job cleanly: the process gets SIGTERM, saves a checkpoint and records `cancelled`."""
    job = get_job(id_or_prefix)
    if job.status in ("succeeded", "failed", "cancelled"):
        raise BadInputError(f"job {job.id} has already ended ({job.status})")
    if job.status == "queued" or not pid_alive(job.pid):
        return queries.update_job(job.id, status="cancelled", stop_reason="cancelled", pid=None)
    queries.add_event(job.id, "cancel", "cancel requested")
    pid = job.pid
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and pid_alive(pid):  # it saves a checkpoint, records, exits
        time.sleep(0.3)
    return refresh(queries.get_job(job.id))


def resume_job(id_or_prefix: str, detach: bool = False, display: Callable[[dict], None] | None = None):
    job = get_job(id_or_prefix)
    if job.status in ("running", "succeeded"):
        raise BadInputError(f"job {job.id} is {job.status}; only a failed or cancelled job can be resumed")
    queries.update_job(job.id, status="queued")
    if detach:
        return spawn_worker(job.id, resume=True)
    return run_job(job.id, resume=True, display=display)
