"""Where the database is and how to open it.

SQLite at $TUNESMITH_HOME/tunesmith.db unless $TUNESMITH_DATABASE_URL names another
database (any SQLAlchemy URL: PostgreSQL for a team). The first `get_engine` for a URL
in a process opens it, brings its schema up to date, and caches the engine.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, event, make_url
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session

from ..errors import TunesmithError
from ..paths import tunesmith_home
from .migrations import apply_migrations

# How long a writer waits for another process's write to finish before giving up.
# Writes are single small transactions, so anything near this means something is stuck.
BUSY_TIMEOUT_S = 30

_engines: dict[tuple[int, str], Engine] = {}
_engines_lock = threading.Lock()


def database_url() -> str:
    return os.environ.get("TUNESMITH_DATABASE_URL") or f"sqlite:///{tunesmith_home() / 'tunesmith.db'}"


def get_engine(url: str | None = None) -> Engine:
    """The engine for `url` (default: `database_url()`), with its schema up to date.

    Cached per process and URL: a forked child must not reuse its parent's pooled
    connections (SQLite forbids carrying them across fork), so it opens its own.
    """
    url = url or database_url()
    key = (os.getpid(), url)
    with _engines_lock:
        if key not in _engines:
            engine = _open(url)
            apply_migrations(engine)
            _engines[key] = engine
        return _engines[key]


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session on the default database: commits when the block ends, rolls back if it raises.

    Objects stay readable after the block (expire_on_commit=False): they are detached
    snapshots of the rows as committed.
    """
    session = Session(get_engine(), expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _open(url: str) -> Engine:
    """Create the engine and connect once, so a bad URL fails here with a readable error."""
    try:
        sqlite = make_url(url).get_backend_name() == "sqlite"
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S} if sqlite else {})
        if sqlite:
            _configure_sqlite(engine)
        with engine.connect():
            pass
    except (ArgumentError, ImportError, SQLAlchemyError) as exc:
        raise TunesmithError(
            f"cannot open the database {_masked(url)}: {_first_line(exc)}",
            "check TUNESMITH_DATABASE_URL (an SQLAlchemy URL, with its driver installed) "
            "or unset it to use SQLite under TUNESMITH_HOME",
        ) from exc
    return engine


def _configure_sqlite(engine: Engine) -> None:
    """Let a background training process and the CLI write to one SQLite file at once.

    WAL lets readers and one writer work side by side. Every transaction starts with
    BEGIN IMMEDIATE, taking the write lock up front and waiting up to BUSY_TIMEOUT_S
    for it: a transaction that reads first and upgrades to writing later could instead
    fail at once with "database is locked" when another process wrote in between,
    whatever the timeout. Reads pay a brief wait behind a write, which is cheap here.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # the driver emits no BEGIN of its own; _on_begin does
        dbapi_connection.execute("PRAGMA journal_mode = WAL")
        dbapi_connection.execute("PRAGMA synchronous = NORMAL")  # safe with WAL; fsync at checkpoints only
        dbapi_connection.execute("PRAGMA foreign_keys = ON")

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _masked(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:  # not parseable as a URL: hide all from the first ":" to the last "@"
        return re.sub(r":.*@", ":***@", url)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.splitlines()[0] if text else type(exc).__name__
