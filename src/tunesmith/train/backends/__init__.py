"""Backends: where a job's training happens, behind one small protocol.

The job runner (train/jobs.py) owns the life cycle: it creates the job, moves it between
states (checked by the store) and registers the model. A backend only does the work and says
how it stands, as `Update`s: it never writes job rows or registers models itself. Adding a
backend is one new module with a class that has these methods (base.Backend), and an entry
in BACKENDS."""

from __future__ import annotations

from .base import Backend, TrainedModel, Update
from .local import LocalBackend
from .vertex import VertexBackend

__all__ = ["Backend", "LocalBackend", "TrainedModel", "Update", "VertexBackend", "backend_for"]

BACKENDS: dict[str, type] = {"local": LocalBackend, "vertex": VertexBackend}


def backend_for(name: str) -> Backend:
    return BACKENDS[name]()
