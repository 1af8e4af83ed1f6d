"""A small prepared dataset of support tickets for training tests."""

from __future__ import annotations

import time
from pathlib import Path

from tunesmith.data.prepare import PrepareOptions, prepare
from tunesmith.examples.tickets import write_tickets


def prepared_tickets(folder: Path, n: int = 120, validation: float = 0.2, seed: int = 0, test: float = 0.1) -> Path:
    raw = folder / "tickets.jsonl"
    write_tickets(raw, n=n, seed=seed)
    out = folder / "prepared"
    prepare([raw], out, PrepareOptions(dedupe=True, drop_conflicts=True, enforce_template=True,
                                       validation=validation, test=test))
    return out


def wait_for(condition, timeout_s: float = 120.0) -> bool:
    """Poll `condition` until it holds or `timeout_s` passes (background jobs, processes)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False
