"""Shared fixtures: real databases (SQLite file and PostgreSQL), never mocks.

``db_url`` is parametrized over both backends, so every test that takes it
runs on each. PostgreSQL tests skip when the server is absent locally, but
fail under ``CI=true``: CI must never pass by skipping.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import create_engine, inspect, text

#: fixtures shared by several modules: the deployer's (a repository to deploy, a work root, a remote that never
#: answers) and a Python another OS user can run; and the groups the two workers run (tests/xdist_groups.py)
pytest_plugins = ["deploying", "shared_python", "xdist_groups"]

PG_ADMIN_URL = os.environ.get("PYFI_TEST_PG", "postgresql+psycopg2://postgres@localhost:5432/postgres")
REDIS_URL = os.environ.get("PYFI_TEST_REDIS", "redis://localhost:6379/0")
IN_CI = os.environ.get("CI") == "true"
ADMIN = "admin"


def require_service(name: str, reason: str) -> None:
    """Skip locally, fail under CI, when a service a test needs is missing."""
    message = f"{name} unavailable: {reason}"
    if IN_CI:
        pytest.fail(message + " (CI=true: services must be running)")
    pytest.skip(message)


def _pg_admin_engine():
    return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    name = f"pyfi_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = _pg_admin_engine()
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))  # name is generated above, never user input
    except Exception as exc:  # noqa: BLE001 - any failure means "no server here"
        require_service("PostgreSQL", str(exc).splitlines()[0])
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    yield url
    from pyfi.db.engine import dispose_all

    dispose_all()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        # workers' logins whose database is gone (an agent killed before it could drop them): roles are cluster-wide
        orphans = conn.execute(text(
            "SELECT r.rolname FROM pg_roles r WHERE starts_with(r.rolname, 'pyfi_w_') AND NOT EXISTS"
            " (SELECT 1 FROM pg_database d, aclexplode(d.datacl) a WHERE a.grantee = r.oid)")).scalars().all()
    drop_roles(orphans)
    admin.dispose()


@pytest.fixture(scope="session")
def pg_migrated(pg_server_url: str) -> str:
    from pyfi.db import migrate

    migrate.upgrade(pg_server_url)
    return pg_server_url


def drop_roles(names) -> None:
    """Drop these database roles (cluster-wide, so tests must never leave one behind)."""
    from psycopg2 import sql

    engine = _pg_admin_engine()
    try:
        with engine.connect() as conn, conn.connection.dbapi_connection.cursor() as cursor:
            for name in names:
                cursor.execute("SELECT d.datname FROM pg_database d, aclexplode(d.datacl) a JOIN pg_roles r"
                               " ON r.oid = a.grantee WHERE r.rolname = %s", (name,))
                for (database,) in cursor.fetchall():  # CONNECT given by pyfi databases (migration 0008)
                    cursor.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(
                        sql.Identifier(database), sql.Identifier(name)))
                cursor.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
    finally:
        engine.dispose()


def drop_user_roles(url: str) -> None:
    """Drop the login roles of this database's pyfi users (``add user`` makes one on PostgreSQL)."""
    from pyfi.core.pg_roles import GROUP
    from pyfi.db.engine import get_engine

    query = text("SELECT u.name FROM users u JOIN pg_roles r ON r.rolname = u.name"
                 " JOIN pg_auth_members m ON m.member = r.oid JOIN pg_roles g ON g.oid = m.roleid"
                 " WHERE g.rolname = :group")
    with get_engine(url).connect() as conn:
        names = conn.execute(query, {"group": GROUP}).scalars().all() if inspect(conn).has_table("users") else []
        if inspect(conn).has_table("worker_logins"):  # and the logins agents made for their workers
            names += conn.execute(text("SELECT role FROM worker_logins")).scalars().all()
    drop_roles(names)


@pytest.fixture
def role_prefix(request) -> Iterator[str]:
    """A unique prefix for database role names; every role starting with it is dropped afterwards."""
    prefix = f"pyfit_{uuid.uuid4().hex[:6]}_"
    yield prefix
    try:
        engine = _pg_admin_engine()
        with engine.connect() as conn:
            names = conn.execute(text("SELECT rolname FROM pg_roles WHERE starts_with(rolname, :p)"),
                                 {"p": prefix}).scalars().all()
        engine.dispose()
    except Exception:  # noqa: BLE001 - no server: nothing was created
        return
    drop_roles(names)


def truncate_all(url: str) -> None:
    """Empty every table but the network's id (the PostgreSQL database is shared by the whole test session)."""
    from pyfi.db.base import Base
    from pyfi.db.engine import get_engine

    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables if t.name != "installation")  # (its id stays)
    with get_engine(url).begin() as conn:
        conn.execute(text(f"TRUNCATE {names} CASCADE"))


@pytest.fixture(params=["sqlite", "postgres"])
def db_kind(request) -> str:
    return request.param


@pytest.fixture
def home(tmp_path: Path, monkeypatch) -> Path:
    """An isolated PYFI_HOME with no ini file and no inherited PYFI_* vars."""
    for var in list(os.environ):
        if var.startswith("PYFI_") and not var.startswith("PYFI_TEST"):
            monkeypatch.delenv(var)
    path = tmp_path / "pyfi-home"
    monkeypatch.setenv("PYFI_HOME", str(path))
    monkeypatch.setenv("PYFI_USER", ADMIN)
    return path


@pytest.fixture
def empty_db_url(db_kind: str, home: Path, request) -> Iterator[str]:
    """A database URL with no schema (sqlite) or a migrated-then-dropped one (postgres)."""
    if db_kind == "sqlite":
        yield f"sqlite:///{home}/pyfi.db"
        return
    url = request.getfixturevalue("pg_server_url")
    from pyfi.db import migrate

    migrate.drop(url)
    yield url
    drop_user_roles(url)
    migrate.drop(url)


@pytest.fixture
def db_url(db_kind: str, home: Path, request, monkeypatch) -> Iterator[str]:
    """A migrated, empty database, exported as PYFI_DB for CLI invocations."""
    from pyfi.core.access import bootstrap_admin
    from pyfi.db import migrate
    from pyfi.db.engine import session_scope

    if db_kind == "sqlite":
        url = f"sqlite:///{home}/pyfi.db"
        migrate.upgrade(url)
    else:
        url = request.getfixturevalue("pg_migrated")
        migrate.upgrade(url)  # an earlier empty_db_url test may have dropped the shared schema
        truncate_all(url)
    with session_scope(url) as session:
        bootstrap_admin(session, ADMIN)
    monkeypatch.setenv("PYFI_DB", url)
    yield url
    if db_kind == "postgres":
        drop_user_roles(url)


@pytest.fixture
def run_cli():
    """Invoke the CLI in-process; returns click's Result (exit_code, output)."""
    from click.testing import CliRunner

    from pyfi.cli import cli

    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(cli, list(args), input=input, catch_exceptions=False)

    return invoke


@pytest.fixture
def redis_url() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001
        require_service("Redis", str(exc))
    return REDIS_URL


@pytest.fixture
def stack(db_kind: str, request) -> str:
    """The servers a network test runs on: the embedded default with SQLite, Redis with PostgreSQL."""
    if db_kind == "postgres":
        request.getfixturevalue("redis_url")
        return "redis"
    return "embedded"


@pytest.fixture
def net(stack: str, db_url: str, home: Path, tmp_path: Path):
    """A pyfi network on that stack; its agents and workers are stopped afterwards."""
    from network import Network, stack_env

    network = Network(stack_env(stack, home, db_url), tmp_path)
    yield network
    network.close()


@pytest.fixture(scope="session")
def scram_cluster():
    """A PostgreSQL cluster of the tests' own where every login needs its password (tests/pgcluster.py)."""
    from pgcluster import cluster_of_our_own

    with cluster_of_our_own() as cluster:
        yield cluster


@pytest.fixture
def scram_db(scram_cluster, home: Path, monkeypatch):
    """A migrated pyfi database on the scram cluster, owned by a non-superuser login; admin is its pyfi administrator.

    Yields (url of the owner's login, cluster). Afterwards the database and every role made meanwhile are dropped
    (roles are cluster-wide: the next test starts with none).
    """
    from pyfi.core.access import bootstrap_admin
    from pyfi.db import migrate
    from pyfi.db.engine import dispose_all, session_scope

    url, owner, _password = scram_cluster.new_database()
    migrate.upgrade(url)
    with session_scope(url) as session:
        bootstrap_admin(session, ADMIN)
    monkeypatch.setenv("PYFI_DB", url)
    yield url, scram_cluster
    dispose_all()
    database = url.rsplit("/", 1)[1]
    scram_cluster.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')  # names made by the cluster helper
    _drop_cluster_roles(scram_cluster)


def _drop_cluster_roles(cluster) -> None:
    import psycopg2
    from psycopg2 import sql

    conn = psycopg2.connect(cluster.super_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT datname FROM pg_database WHERE starts_with(datname, 'pyfi_')")
            for (database,) in cursor.fetchall():  # left by a test that made a second database
                cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
            cursor.execute("SELECT rolname FROM pg_roles WHERE NOT starts_with(rolname, 'pg_') AND rolname <> %s",
                           (cluster_super(),))
            for (role,) in cursor.fetchall():
                cursor.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
    finally:
        conn.close()


def cluster_super() -> str:
    from pgcluster import SUPER

    return SUPER
