"""Where tunesmith keeps things: its state folder and its cache.

- `tunesmith_home()`: the store (SQLite by default), run folders, evaluations. $TUNESMITH_HOME,
  else ./.tunesmith, like .git: each project keeps its own history.
- `cache_dir()`: what can be made again (converted base models, the machine's probe).
  $TUNESMITH_CACHE, else $XDG_CACHE_HOME/tunesmith, else ~/.cache/tunesmith: shared by projects."""

from __future__ import annotations

import os
from pathlib import Path


def tunesmith_home() -> Path:
    """$TUNESMITH_HOME, else ./.tunesmith (like .git), made absolute and created."""
    home = Path(os.environ.get("TUNESMITH_HOME") or ".tunesmith").resolve()
    home.mkdir(parents=True, exist_ok=True)
    return home


def runs_dir() -> Path:
    """Each training job's folder is `runs_dir() / <job-id>`."""
    return tunesmith_home() / "runs"


def evals_dir() -> Path:
    """Each evaluation's folder (results, report) is `evals_dir() / <eval-id>`."""
    return tunesmith_home() / "evals"


def monitor_dir() -> Path:
    """Each monitor run's folder (summary, report, labelling queue) is `monitor_dir() / <run-id>`."""
    return tunesmith_home() / "monitor"


def cache_dir() -> Path:
    """$TUNESMITH_CACHE, else $XDG_CACHE_HOME/tunesmith, else ~/.cache/tunesmith."""
    if os.environ.get("TUNESMITH_CACHE"):
        return Path(os.environ["TUNESMITH_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tunesmith"
