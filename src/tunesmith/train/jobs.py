"""Jobs: a training run with a folder, a row in the store, and a life cycle.

    queued -> running -> succeeded | failed | cancelled

A job runs in the foreground (`run_job`) or in a background process that outlives the
command (`start_job(..., detach=True)`, which starts `python -m tunesmith.train.worker`).
Its folder `$TUNESMITH_HOME/runs/<job-id>/` holds the resolved spec, the log,
metrics.jsonl, checkpoints and the result. A job whose process died (a crash, `kill -9`)
is marked failed the next time anyone looks, and `resume_job` continues it from its last
checkpoint.

A job on the managed path (`backend: vertex`, train/backends/vertex.py) runs at Vertex AI:
this process uploads the data, creates the remote job and polls it; `--detach` returns once
it exists, and `get_job` (`tunesmith jobs show`) polls it again. Its row keeps the remote job's
name and state.

A job on several processes (`processes: N` or an `accelerate_config` in its spec) runs
under `accelerate launch` (train/accelerate/): foreground or detached, this process starts
the launcher in a new session and records the launcher's pid; the launched ranks run
`python -m tunesmith.train.worker JOB_ID --launched`, and rank 0 records everything."""

from __future__ import annotations

import json
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
from . import accelerate as launch
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
    job = queries.create_job(spec.backend, resolved, run_dir="", base_model=spec.base_model, method=spec.method,
                             dataset_version=version)
    run_dir = runs_dir() / job.id
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / SPEC_FILE, yaml.safe_dump(resolved, sort_keys=False))
    return queries.update_job(job.id, run_dir=str(run_dir))


def start_job(spec: TrainSpec, detach: bool = False, display: Callable[[dict], None] | None = None,
              confirm: Callable | None = None):
    """Create and run a job. For a vertex spec, `confirm` sees the cost estimate before anything
    is uploaded and may decline (then there is no job: None is returned)."""
    if spec.backend == "vertex":
        from .backends import vertex

        return vertex.start(spec, detach=detach, display=display, confirm=confirm)
    from .backends.local import check_hardware

    check_hardware(spec)  # before a job exists: a run this machine cannot do is bad usage, not a failed job
    if launch.launches(spec):
        launch.check(spec)  # the accelerate config exists, deepspeed is installed, enough GPUs
    job = create_job(spec)
    if detach:
        return spawn_worker(job.id)
    return run_job(job.id, display=display)


def spawn_worker(job_id: str, resume: bool = False):
    """Run the job in a new process session, so it survives the terminal that started it."""
    job = queries.get_job(job_id)
    if launch.launches(job.spec):
        _start_launcher(job, _read_spec(Path(job.run_dir)), resume)
        return queries.get_job(job.id)
    log = open(Path(job.run_dir) / LOG_FILE, "ab")
    command = [sys.executable, "-m", "tunesmith.train.worker", job.id] + (["--resume"] if resume else [])
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    log.close()
    return queries.update_job(job.id, pid=process.pid)


def run_job(job_id: str, resume: bool = False, display: Callable[[dict], None] | None = None,
            launched: bool = False):
    """Run a job in this process, from start (or its last checkpoint) to a final status.

    A multi-process job is launched and followed instead (`_run_launched`); `launched` says
    this process is one of its ranks, started by `accelerate launch`."""
    from .backends import local

    job = queries.get_job(job_id)
    run_dir = Path(job.run_dir)
    spec = _read_spec(run_dir)
    if not launched and launch.launches(spec):
        return _run_launched(job, spec, resume, display)
    if launched and launch.rank() != 0:  # trains in step with rank 0 and records nothing; errors propagate
        local.run(job.id, spec, run_dir, resume=resume)
        return job
    logger = _file_logger(run_dir)
    # A launched rank 0 keeps the launcher's pid in the row: that is the process to watch and to signal.
    queries.update_job(job.id, status="running", stop_reason=None, error=None,
                       **({} if launched else {"pid": os.getpid()}))
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


# --- several processes: `accelerate launch` (see train/accelerate/__init__.py) ---

def _read_spec(run_dir: Path) -> TrainSpec:
    return TrainSpec(**yaml.safe_load((run_dir / SPEC_FILE).read_text(encoding="utf-8")))


def _start_launcher(job, spec: TrainSpec, resume: bool):
    """Start `accelerate launch` for the job in a new session; the launcher's pid is the job's."""
    process = launch.start(job.id, spec, Path(job.run_dir) / LOG_FILE, resume=resume)
    queries.update_job(job.id, status="running", pid=process.pid, stop_reason=None, error=None)
    queries.add_event(job.id, "launch", f"accelerate launch: {spec.processes} process(es), config "
                      f"{launch.config_path(spec.accelerate_config).name}",
                      {"command": launch.launch_command(job.id, spec, resume), "pid": process.pid})
    return process


def _run_launched(job, spec: TrainSpec, resume: bool, display: Callable[[dict], None] | None):
    """A multi-process job in the foreground: launch it, show what rank 0 records, wait for the end.
    Ctrl-C cancels it the way `tunesmith jobs cancel` does."""
    follow = _follower(job.id, Path(job.run_dir), display)  # from here on: a resumed job's old rows are not replayed
    process = _start_launcher(job, spec, resume)
    try:
        while process.poll() is None:
            follow()
            time.sleep(0.5)
    except KeyboardInterrupt:
        os.killpg(process.pid, signal.SIGTERM)  # every rank stops at the same step, checkpoints, rank 0 records
        process.wait()
    follow()
    job = queries.get_job(job.id)
    if job.status in ("queued", "running"):  # the ranks ended without rank 0 recording how
        return queries.update_job(job.id, status="failed", stop_reason="error", pid=None,
                                  error=f"the training processes exited (code {process.returncode}) without "
                                        f"recording a result; see {Path(job.run_dir) / LOG_FILE}")
    return job


def _follower(job_id: str, run_dir: Path, display: Callable[[dict], None] | None) -> Callable[[], None]:
    """A function that passes the metric rows and events recorded since its last call (or its
    creation) to `display`."""
    metrics = run_dir / "metrics.jsonl"
    position = metrics.stat().st_size if metrics.exists() else 0
    last_event = max((e.id for e in queries.job_events(job_id)), default=0)

    def follow() -> None:
        nonlocal position, last_event
        if display is None:
            return
        for event in queries.job_events(job_id, after_id=last_event):
            last_event = event.id
            display({"event": event.kind, "message": event.message})
        if metrics.exists():
            with open(metrics, "rb") as f:
                f.seek(position)
                chunk = f.read()
            complete = chunk[:chunk.rfind(b"\n") + 1]  # a row being written is read next time
            position += len(complete)
            for line in complete.decode("utf-8").splitlines():
                display(json.loads(line))

    return follow


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


def refresh(job, remote: bool = True):
    """A running job whose process is gone died without saying so: record that. A vertex job
    is polled at Vertex AI (unless `remote` is False: then its last polled state stands)."""
    if job.backend == "vertex":
        from .backends import vertex

        return vertex.refresh(job) if remote and job.status in ("queued", "running") and job.remote_name else job
    if job.status == "running" and job.backend == "local" and not pid_alive(job.pid):
        return queries.update_job(job.id, status="failed", stop_reason="process_died", pid=None,
                                  error="the training process ended without finishing (crash or kill); "
                                        f"`tunesmith jobs resume {job.id}` continues from the last checkpoint")
    return job


def get_job(id_or_prefix: str):
    return refresh(queries.get_job(id_or_prefix))


def list_jobs(limit: int = 50):
    return [refresh(job, remote=False) for job in queries.list_jobs(limit=limit)]


def cancel_job(id_or_prefix: str, wait_s: float = CANCEL_WAIT_S):
    """Stop a job cleanly: the process gets SIGTERM, saves a checkpoint and records `cancelled`."""
    job = get_job(id_or_prefix)
    if job.status in ("succeeded", "failed", "cancelled"):
        raise BadInputError(f"job {job.id} has already ended ({job.status})")
    if job.backend == "vertex":
        from .backends import vertex

        return vertex.cancel(job)
    if job.status == "queued" or not pid_alive(job.pid):
        return queries.update_job(job.id, status="cancelled", stop_reason="cancelled", pid=None)
    queries.add_event(job.id, "cancel", "cancel requested")
    pid = job.pid
    if launch.launches(job.spec):  # the launcher leads its own process group and passes SIGTERM to every rank
        os.killpg(pid, signal.SIGTERM)
    else:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and pid_alive(pid):  # it saves a checkpoint, records, exits
        time.sleep(0.3)
    return refresh(queries.get_job(job.id))


def resume_job(id_or_prefix: str, detach: bool = False, display: Callable[[dict], None] | None = None):
    job = get_job(id_or_prefix)
    if job.backend == "vertex":
        raise BadInputError(f"job {job.id} ran at Vertex AI, which cannot resume a tuning job",
                            "start a new one with `tunesmith train` (the upload is skipped: same content)")
    if job.status in ("running", "succeeded"):
        raise BadInputError(f"job {job.id} is {job.status}; only a failed or cancelled job can be resumed")
    queries.update_job(job.id, status="queued")
    if detach:
        return spawn_worker(job.id, resume=True)
    return run_job(job.id, resume=True, display=display)
