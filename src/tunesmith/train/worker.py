"""The background process of a detached job: `python -m tunesmith.train.worker JOB_ID [--resume]`.

With `--launched` it is one rank of a multi-process job, started by `accelerate launch`
(see train/accelerate/__init__.py)."""

from __future__ import annotations

import sys

from .jobs import run_job


def main(argv: list[str]) -> int:
    launched = "--launched" in argv[1:]
    if launched:
        from .accelerate import die_with_launcher, rank

        die_with_launcher()
    job = run_job(argv[0], resume="--resume" in argv[1:], launched=launched)
    if launched:
        # A rank that exits non-zero makes the launcher kill the others, so every rank exits 0 when
        # the run ended as recorded (completed, stopped, cancelled, diverged), and non-zero on an error.
        return 0 if rank() != 0 or job.stop_reason != "error" else 1
    return 0 if job.status == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
