"""The background process of a detached job: `python -m tunesmith.train.worker JOB_ID [--resume]`."""

from __future__ import annotations

import sys

from .jobs import run_job


def main(argv: list[str]) -> int:
    job = run_job(argv[0], resume="--resume" in argv[1:])
    return 0 if job.status == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
