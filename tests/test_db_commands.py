"""``pyfi db``: init/migrate/drop/rebuild/json through the migrations, on SQLite and PostgreSQL."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import inspect

from pyfi.db.base import Base

PG_URLS: set[str] = set()


@pytest.fixture(scope="module", autouse=True)
def leave_postgres_migrated():
    """``empty_db_url`` drops the shared PostgreSQL schema; later ``db_url`` tests expect it migrated."""
    yield
    from pyfi.db import migrate

    for url in PG_URLS:
        migrate.upgrade(url)


@pytest.fixture
def url(empty_db_url: str, db_kind: str, monkeypatch) -> str:
    if db_kind == "postgres":
        PG_URLS.add(empty_db_url)
    monkeypatch.setenv("PYFI_DB", empty_db_url)
    return empty_db_url


def tables(url: str) -> set[str]:
    from pyfi.db.engine import get_engine

    with get_engine(url).connect() as conn:
        return set(inspect(conn).get_table_names())


def pyfi_tables() -> set[str]:
    return {t.name for t in Base.metadata.sorted_tables}


def one_error_line(result, exit_code: int) -> str:
    assert result.exit_code == exit_code, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


def queue_names(run_cli) -> set[str]:
    result = run_cli("ls", "queues", "--json")
    assert result.exit_code == 0, result.output
    return {row["name"] for row in json.loads(result.stdout)["rows"]}


def test_init_creates_the_schema_through_the_migrations_once(url, run_cli):
    from pyfi.db import migrate

    first = run_cli("db", "init")
    assert first.exit_code == 0, first.output
    assert "initialized" in first.stdout and "'admin' is its administrator" in first.stdout
    assert pyfi_tables() | {"alembic_version"} <= tables(url)
    assert migrate.current_revision(url) == migrate.head_revision(url)
    assert json.loads(run_cli("whoami", "--json").stdout)["rights"] == ["ALL"]
    assert run_cli("add", "queue", "-n", "kept").exit_code == 0
    second = run_cli("db", "init")
    assert second.exit_code == 0
    assert "already initialized" in second.stdout
    assert queue_names(run_cli) == {"kept"}


def test_migrate_reports_up_to_date(url, run_cli):
    from pyfi.db import migrate

    assert run_cli("db", "init").exit_code == 0
    result = run_cli("db", "migrate")
    assert result.exit_code == 0
    assert f"up to date (revision {migrate.head_revision(url)})" in result.stdout


def test_migrate_on_an_empty_database_says_to_init(url, run_cli):
    """Migrating would create tables without an administrator and lock everyone out."""
    line = one_error_line(run_cli("db", "migrate"), 1)
    assert "pyfi db init" in line
    assert not (pyfi_tables() & tables(url))


def test_drop_asks_and_n_keeps_everything(url, run_cli):
    assert run_cli("db", "init").exit_code == 0
    assert run_cli("add", "queue", "-n", "q1").exit_code == 0
    result = run_cli("db", "drop", input="n\n")
    assert result.exit_code == 1
    assert "Drop every pyfi table" in result.output and "Aborted" in result.output
    assert pyfi_tables() <= tables(url)
    assert queue_names(run_cli) == {"q1"}


def test_drop_with_yes_answer_or_flag_drops_every_table(url, run_cli):
    assert run_cli("db", "init").exit_code == 0
    result = run_cli("db", "drop", input="y\n")
    assert result.exit_code == 0 and "Dropped all tables" in result.output
    assert not (pyfi_tables() | {"alembic_version"}) & tables(url)
    assert run_cli("db", "init").exit_code == 0
    result = run_cli("db", "drop", "-y")
    assert result.exit_code == 0 and "Drop every" not in result.output
    assert not (pyfi_tables() | {"alembic_version"}) & tables(url)
    assert "pyfi db init" in one_error_line(run_cli("ls", "queues"), 1)


def test_drop_needs_the_db_drop_right(url, run_cli, monkeypatch):
    assert run_cli("db", "init").exit_code == 0
    assert run_cli("add", "user", "-n", "joe", "-e", "joe@xyz", "-p", "pw").exit_code == 0
    monkeypatch.setenv("PYFI_USER", "joe")
    assert "DB_DROP" in one_error_line(run_cli("db", "drop", "-y"), 1)
    assert pyfi_tables() <= tables(url)


def test_rebuild_drops_the_data_and_recreates_the_schema(url, run_cli):
    assert run_cli("db", "init").exit_code == 0
    assert run_cli("add", "queue", "-n", "q1").exit_code == 0
    declined = run_cli("db", "rebuild", input="n\n")
    assert declined.exit_code == 1 and "Aborted" in declined.output
    assert queue_names(run_cli) == {"q1"}
    result = run_cli("db", "rebuild", "-y")
    assert result.exit_code == 0 and "Rebuilt database" in result.output
    assert queue_names(run_cli) == set()
    assert json.loads(run_cli("whoami", "--json").stdout)["rights"] == ["ALL"]


def test_json_dumps_every_table_without_secrets(url, run_cli):
    assert run_cli("db", "init").exit_code == 0
    for args in (("add", "queue", "-n", "q1"),
                 ("add", "processor", "-n", "p1", "-m", "pkg.mod", "-g", "https://bob:tok3n-xyz@git.example/r.git"),
                 ("add", "socket", "-n", "s1", "-q", "q1", "-pn", "p1", "-t", "do_this"),
                 ("add", "user", "-n", "joe", "-e", "joe@xyz", "-p", "s3cr3t-pw")):
        assert run_cli(*args).exit_code == 0, args
    result = run_cli("db", "json")
    assert result.exit_code == 0
    dump = json.loads(result.stdout)
    assert set(dump) == pyfi_tables()
    assert {q["name"] for q in dump["queues"]} == {"q1"}
    assert {u["name"] for u in dump["users"]} == {"admin", "joe"}
    assert dump["sockets"][0]["processor_id"] == dump["processors"][0]["id"]
    for table in ("queues", "processors", "sockets", "users", "privileges", "tasks"):
        for row in dump[table]:
            assert isinstance(row["created"], str)
            dt.datetime.fromisoformat(row["created"])
            assert "T" in row["created"]
    assert "password_hash" not in result.stdout
    assert "s3cr3t-pw" not in result.stdout and "scrypt$" not in result.stdout
    assert "tok3n-xyz" not in result.stdout
    assert dump["processors"][0]["gitrepo"] == "https://bob:***@git.example/r.git"


@pytest.mark.parametrize("args", [
    ("ls", "queues"),
    ("ls", "queue", "-n", "q1"),
    ("ls", "calls"),
    ("add", "queue", "-n", "q1"),
    ("delete", "queue", "-n", "q1"),
    ("update", "queue", "-n", "q1", "-t", "topic"),
    ("proc", "start", "-n", "p1"),
    ("whoami",),
    ("db", "json"),
])
def test_commands_on_an_uninitialized_database_say_to_run_init(url, run_cli, args):
    line = one_error_line(run_cli(*args), 1)
    assert ("has no pyfi schema" in line or "no pyfi database at" in line) and "run `pyfi db init`" in line


def test_a_schema_behind_this_pyfi_says_to_migrate(url, run_cli):
    from alembic import command
    from alembic.script import ScriptDirectory

    from pyfi.db import migrate

    assert run_cli("db", "init").exit_code == 0
    assert run_cli("add", "processor", "-n", "p1", "-m", "pkg.sample", "-g", "https://x/y.git").exit_code == 0
    config = migrate.alembic_config(url)
    first = ScriptDirectory.from_config(config).get_base()
    head = migrate.head_revision(url)
    if first == head:
        pytest.skip("only one migration: no older schema to simulate")
    command.downgrade(config, first)  # as if the database predates this version of pyfi
    line = one_error_line(run_cli("ls", "processors"), 1)
    assert f"schema is at revision {first}, this pyfi needs {head}" in line and "run `pyfi db migrate`" in line
    result = run_cli("db", "migrate")
    assert result.exit_code == 0 and f"migrated from revision {first} to {head}" in result.stdout
    assert {row["name"] for row in json.loads(run_cli("ls", "processors", "--json").stdout)["rows"]} == {"p1"}
