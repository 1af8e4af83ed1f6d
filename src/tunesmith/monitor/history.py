"""Past monitor runs, read back from their folders ($TUNESMITH_HOME/monitor/<run-id>/summary.json):
the web page's list and each run's page. Files, not store rows: a run is its summary."""

from __future__ import annotations

import json
import re

from ..errors import BadInputError
from ..paths import monitor_dir
from .runner import SUMMARY_FILE

_RUN_ID = re.compile(r"^mon-[0-9A-Za-z-]+$")


def list_runs(subject: str | None = None, limit: int = 100) -> list[dict]:
    """Summaries of past runs, newest first; only those of one subject when given."""
    folder = monitor_dir()
    runs = []
    for path in folder.glob(f"mon-*/{SUMMARY_FILE}") if folder.is_dir() else []:
        try:
            summary = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue  # a run being written, or a file someone broke: not a run to show
        if subject is None or summary.get("subject") == subject:
            runs.append(summary)
    runs.sort(key=lambda s: (s.get("created_at", ""), s.get("id", "")), reverse=True)
    return runs[:limit]


def get_run(run_id: str) -> dict:
    """One run's summary."""
    path = monitor_dir() / run_id / SUMMARY_FILE
    if not _RUN_ID.match(run_id) or not path.is_file():
        raise BadInputError(f"no monitor run {run_id!r}", "`tunesmith monitor MODEL` makes one; the Monitor page lists them")
    return json.loads(path.read_text(encoding="utf-8"))
