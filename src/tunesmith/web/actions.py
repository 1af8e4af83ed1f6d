"""The web app's one door into the job life cycle (train/jobs.py): cancel, resume, and the
liveness check that marks a job whose process died. Every view goes through here, so a
change to that module's names is a change to this import line only."""

from __future__ import annotations

from ..store import schema
from ..train.jobs import cancel_job, refresh, resume_job


def cancel(job_id: str) -> schema.Job:
    """Stop the job cleanly (it checkpoints first); returns once it has stopped (up to a minute)."""
    return cancel_job(job_id)


def resume(job_id: str) -> schema.Job:
    """Continue a failed or cancelled local job from its last checkpoint, in the background."""
    return resume_job(job_id, detach=True)


def fresh(job: schema.Job) -> schema.Job:
    """The job as it is now: a local job that says "running" but whose process is gone is marked failed.
    A job at Vertex AI keeps its last polled state (polling it is `tunesmith jobs show`'s)."""
    return refresh(job, remote=False)
