"""Engines and sessions.

One engine per (process, URL). SQLite connections get WAL, a busy timeout
and foreign keys on every connection, because CLI, agents and workers share
the file. Engines must not cross a fork: workers create theirs after it.
"""
from __future__ import annotations

import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from pyfi.errors import (
    BackendUnavailable,
    ConfigError,
    NotInitialized,
    PermissionDenied,
)
from pyfi.private import private_file

_ENGINES: dict[tuple[int, str], Engine] = {}
_ENGINES_LOCK = threading.Lock()  # an agent's threads (deploys, health, the loop) ask for engines at once
#: one session factory per engine, as _ENGINES: building a sessionmaker defines a class (~0.1 ms), and a session
#: is opened at every agent tick and every worker poll
_FACTORIES: dict[tuple[int, str], sessionmaker] = {}
SQLITE_BUSY_MS = 30_000
INSUFFICIENT_PRIVILEGE = "42501"  # PostgreSQL: a GRANT or row-level security policy said no


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001 - DBAPI hook
    cursor = dbapi_conn.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
    _enable_wal(cursor)
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _enable_wal(cursor) -> None:  # noqa: ANN001 - DBAPI cursor
    """Switch the file to WAL. Two processes opening a new file at once (a worker and ``db init``) may
    be told "locked" without the busy handler being consulted: retry until SQLITE_BUSY_MS has passed."""
    deadline = time.monotonic() + SQLITE_BUSY_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def get_engine(url: str) -> Engine:
    """Return this process's engine for ``url``, creating it on first use."""
    key = (os.getpid(), url)
    engine = _ENGINES.get(key)
    if engine is None:
        with _ENGINES_LOCK:
            engine = _ENGINES.get(key)
            if engine is None:
                engine = _ENGINES[key] = _create(url)
    return engine


def _create(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"invalid database URI {url!r}", "e.g. postgresql://user@localhost/pyfi or sqlite:///path") from exc
    if parsed.drivername == "postgresql":
        # SQLAlchemy 2.1 picks psycopg 3 by default; pyfi ships psycopg2.
        parsed = parsed.set(drivername="postgresql+psycopg2")
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            private_file(os.path.abspath(parsed.database))
        engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_MS / 1000})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    try:
        return create_engine(parsed, pool_pre_ping=True, connect_args=_connect_args(parsed))
    except Exception as exc:  # unknown dialect or missing driver
        raise ConfigError(f"unsupported database URI {url!r}: {exc}", "use postgresql:// or sqlite://") from exc


def _connect_args(parsed) -> dict:  # noqa: ANN001
    if parsed.get_backend_name() == "postgresql":
        return {"connect_timeout": 5}
    return {}


def dispose_all() -> None:
    """Close pooled connections (tests, and before a process forks)."""
    with _ENGINES_LOCK:
        engines = list(_ENGINES.values())
        _ENGINES.clear()
        _FACTORIES.clear()
    for engine in engines:
        engine.dispose()


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A transaction: commit on success, roll back on any error."""
    session = _factory(url)()
    try:
        yield session
        session.commit()
    except OperationalError as exc:
        session.rollback()
        raise unavailable(url, exc) from exc
    except DBAPIError as exc:
        session.rollback()
        if is_refused(exc):
            raise refused(exc) from exc
        raise
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _factory(url: str) -> sessionmaker:
    key = (os.getpid(), url)
    factory = _FACTORIES.get(key)
    if factory is None:
        factory = _FACTORIES[key] = sessionmaker(get_engine(url), expire_on_commit=False)
    return factory


def unavailable(url: str, exc: Exception) -> BackendUnavailable:
    first = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc) else type(exc).__name__
    return BackendUnavailable(
        f"database {redact(url)} is unavailable: {first}",
        "check that the server is running and the URI (--db, PYFI_DB or the ini file) is right",
    )


def is_refused(exc: DBAPIError) -> bool:
    return getattr(exc.orig, "pgcode", None) == INSUFFICIENT_PRIVILEGE


def refused(exc: DBAPIError) -> PermissionDenied:
    """The database itself denied the operation (grants, row-level security)."""
    first = str(exc.orig).strip().splitlines()[0]
    return PermissionDenied(f"the database refused: {first}",
                            "your database login lacks this permission; ask an administrator (see `pyfi whoami`)")


def redact_password(url: str) -> str:
    """The URL without its password (the user stays): a URL to pass on that logs in as no one without one."""
    try:
        return make_url(url)._replace(password=None).render_as_string(hide_password=False)  # (set() keeps a None)
    except ArgumentError:
        return url


def redact(url: str) -> str:
    """The URL with any password masked, safe to print."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def check_initialized(url: str) -> None:
    """Raise NotInitialized unless the pyfi schema exists."""
    missing = _missing_sqlite_file(url)
    if missing is not None:  # connecting would create it (and its directory): a mistyped PYFI_HOME left both behind
        raise NotInitialized(f"no pyfi database at {missing}",
                             "run `pyfi db init` first, or check PYFI_HOME / --db for a typo")
    try:
        with get_engine(url).connect() as conn:
            has = inspect(conn).has_table("alembic_version") and inspect(conn).has_table("processors")
    except OperationalError as exc:
        raise unavailable(url, exc) from exc
    if not has:
        raise NotInitialized(f"database {redact(url)} has no pyfi schema", "run `pyfi db init` first")


def _missing_sqlite_file(url: str) -> str | None:
    """The path of a SQLite database file that does not exist (None for any other URL)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None  # get_engine says what is wrong with it
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return None if os.path.exists(parsed.database) else parsed.database
