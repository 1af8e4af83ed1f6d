"""The one place a job says what happens: events go to the store, the run's log and the
display; metric rows to metrics.jsonl, the store, the log and the display; remote progress
(completed epochs and steps of a managed job) to the log and the display.

Both backends record through it. Under `accelerate launch` only the main process (rank 0)
records: the others get `main=False` and say nothing."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Callable

from ..store import queries

LOG_FILE = "train.log"
METRICS_FILE = "metrics.jsonl"

Display = Callable[[dict], None]


class Recorder:
    def __init__(self, job_id: str, run_dir: str | Path, display: Display | None = None, main: bool = True):
        self.job_id = job_id
        self.run_dir = Path(run_dir)
        self.display = display
        self.main = main
        self.last_progress: dict | None = None

    @property
    def log(self) -> logging.Logger:
        """The run's log file, opened on first use (a look at a job that writes nothing opens nothing)."""
        return run_logger(self.run_dir)

    def event(self, kind: str, message: str, data: dict | None = None, show: bool = True) -> None:
        if not self.main:
            return
        queries.add_event(self.job_id, kind, message, data)
        self.log.info("%s: %s", kind, message)
        if show and self.display:
            self.display({"event": kind, "message": message})

    def metrics(self, row: dict) -> None:
        """One step's metrics: {"step", "epoch", "time", and any of the metric names}."""
        if not self.main:
            return
        with open(self.run_dir / METRICS_FILE, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        values = {k: v for k, v in row.items() if k not in ("step", "epoch", "time")}
        queries.add_metrics(self.job_id, row["step"], row["epoch"], **values)
        self.log.info("step %s/%s epoch %.2f %s", row["step"], row.get("max_steps", "?"), row["epoch"],
                      " ".join(f"{k} {v:.4g}" for k, v in row.items()
                               if k not in ("step", "epoch", "time", "max_steps") and isinstance(v, float)))
        if self.display:
            self.display(row)

    def progress(self, row: dict | None) -> None:
        """A managed job's completed epochs and steps, shown when they change."""
        if row is None or row == self.last_progress or not self.main:
            return
        self.last_progress = row
        total = f"/{row['max_steps']}" if row.get("max_steps") else ""
        self.log.info("epoch %s, step %s%s", row["epoch"], row["step"], total)
        if self.display:
            self.display(row)


def run_logger(run_dir: Path) -> logging.Logger:
    """The job's log file, `train.log` in its run folder (a traceback lands here too)."""
    logger = logging.getLogger(f"tunesmith.job.{run_dir.name}")
    if not logger.handlers:
        handler = logging.FileHandler(run_dir / LOG_FILE, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger
