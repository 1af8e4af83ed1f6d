"""The state store: one SQL database for dataset versions, jobs, their events and
metrics, the model registry, evaluations, ratings and deployments. See docs/store.md.

Its modules load on first use (`tunesmith.lazy`), so importing a floor that uses the store
does not import SQLAlchemy: write `from ..store import queries` and call `queries.get_job(...)`.

    db            where the database is and how to open it (sessions, the engine)
    schema        the tables, as SQLAlchemy mapped classes
    migrations    how a database is brought up to date
    queries       reading and writing: one small function per thing a caller wants to do
    deployments   the same for deployments, their decisions, feedback and routed requests
"""

from __future__ import annotations

from ..lazy import lazy_module

db = lazy_module(f"{__name__}.db")
schema = lazy_module(f"{__name__}.schema")
migrations = lazy_module(f"{__name__}.migrations")
queries = lazy_module(f"{__name__}.queries")
deployments = lazy_module(f"{__name__}.deployments")
