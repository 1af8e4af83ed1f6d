"""`tunesmith jobs …`: list, show, follow, cancel and resume training jobs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from ._options import row_dict

app = typer.Typer(help="Training jobs.", no_args_is_help=True)



@app.command("list")
def list_command(json_out: bool = typer.Option(False, "--json", help="print JSON"),
                 limit: int = typer.Option(50, help="newest first")) -> None:
    """List jobs, newest first."""
    from ..train.jobs import list_jobs

    jobs = list_jobs(limit)
    if json_out:
        print(json.dumps([row_dict(j) for j in jobs], indent=2))
        return
    from rich.console import Console

    from ._display import id_table

    rows = [[j.id, j.status, j.stop_reason or "", j.base_model, j.method, f"{j.created_at:%Y-%m-%d %H:%M}"] for j in jobs]
    Console().print(id_table(["job", "status", "reason", "base model", "method", "created"], rows))


@app.command("show")
def show_command(job_id: str, json_out: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """A job's status, spec, events and latest metrics (a job at Vertex AI is polled first)."""
    from ..store.queries import job_events, job_metrics
    from ..train.jobs import get_job

    job = get_job(job_id)
    events = job_events(job.id)
    metrics = job_metrics(job.id)
    if json_out:
        print(json.dumps({"job": row_dict(job),
                          "events": [{"time": e.time.isoformat(), "kind": e.kind, "message": e.message, "data": e.data}
                                     for e in events],
                          "metrics": [row_dict(m) for m in metrics]}, indent=2, default=str))
        return
    print(f"job {job.id}: {job.status}" + (f" ({job.stop_reason})" if job.stop_reason else ""))
    print(f"  base model {job.base_model}, method {job.method}, data version {job.dataset_version}")
    print(f"  run folder {job.run_dir}")
    if job.remote_name:
        from ..train.backends.vertex import describe_state

        state, _, sub_state = (job.remote_state or "").partition("/")
        print(f"  at Vertex AI: {job.remote_name}" + (f", {describe_state(state, sub_state or None)}" if state else ""))
    if job.error:
        print(f"  error: {job.error}")
    for e in events:
        print(f"  {e.time:%H:%M:%S} {e.kind:13} {e.message}")
    evals = [m for m in metrics if m.eval_loss is not None]
    if evals:
        last = evals[-1]
        print(f"  last evaluation: step {last.step}, validation loss {last.eval_loss:.4f}")


@app.command("logs")
def logs_command(job_id: str, follow: bool = typer.Option(False, "--follow", "-f", help="stream until the job ends"),
                 json_out: bool = typer.Option(False, "--json", help="print the metric rows as JSON lines")) -> None:
    """Print a job's log (or its metrics as JSON lines); --follow streams it."""
    from ..train.jobs import get_job
    from ..train.recorder import LOG_FILE

    job = get_job(job_id)
    path = Path(job.run_dir) / ("metrics.jsonl" if json_out else LOG_FILE)
    position = 0
    while True:
        if path.exists():
            with open(path, encoding="utf-8", errors="replace") as f:
                f.seek(position)
                chunk = f.read()
                position = f.tell()
            if chunk:
                print(chunk, end="", flush=True)
        if not follow or get_job(job.id).status not in ("queued", "running"):
            break
        time.sleep(1.0 if job.backend == "local" else job.spec["poll_interval_s"])  # a vertex job is polled remotely


@app.command("cancel")
def cancel_command(job_id: str) -> None:
    """Stop a job cleanly (it saves a checkpoint, so it can be resumed); a job at Vertex AI is cancelled there."""
    from ..train.jobs import cancel_job

    job = cancel_job(job_id)
    print(f"job {job.id}: {job.status}" + (" (cancelling at Vertex AI)" if job.status == "running" else ""))


@app.command("resume")
def resume_command(job_id: str, detach: bool = typer.Option(False, help="run in the background")) -> None:
    """Continue a failed or cancelled job from its last checkpoint."""
    from ..train.jobs import resume_job
    from ..train.display import TrainingDisplay
    from .train import report_end

    if detach:
        job = resume_job(job_id, detach=True)
        print(f"resumed job {job.id} in the background (pid {job.pid})")
        return
    with TrainingDisplay() as display:
        job = resume_job(job_id, display=display)
    report_end(job)
