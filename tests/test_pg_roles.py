"""PostgreSQL: pyfi users are database roles, and the database enforces who may touch what.

Roles are cluster-wide and the server is shared by concurrent test sessions:
every role made here starts with the ``role_prefix`` fixture's unique prefix,
and that fixture drops them all afterwards, even when a test fails.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import unicodedata

import pytest
from psycopg2 import sql
from sqlalchemy import create_engine, text

from pyfi.core.login import login_url

pytestmark = pytest.mark.parametrize("db_kind", ["postgres"])

NASTY = [  # (name suffix, password): quotes, semicolons, unicode, bind-parameter look-alikes
    ("o'brien\"; DROP TABLE users; --", "pa'ss\"; DROP ROLE postgres; --"),
    ("zoë 日本 ✓", "pässwörd ✓ 日本"),
    ("semi;colon:%s%(x)s$$", "%s %(x)s :bind $$ \\ end"),
    ('"quoted"', "''"),
]


def ok(run_cli, *args: str) -> str:
    result = run_cli(*args)
    assert result.exit_code == 0, (args, result.output)
    return result.stdout


def error(run_cli, *args: str) -> str:
    result = run_cli(*args)
    assert result.exit_code != 0, (args, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in result.output, result.output
    return lines[0]


def admin_engine(db_url: str):
    return create_engine(db_url, isolation_level="AUTOCOMMIT")


def role(db_url: str, name: str) -> dict | None:
    """The role's login flag, pyfi_users membership and stored password verifier (None: no such role)."""
    query = text("SELECT a.rolcanlogin AS login, a.rolpassword AS verifier,"
                 " pg_has_role(a.oid, 'pyfi_users', 'MEMBER') AS member FROM pg_authid a WHERE a.rolname = :n")
    engine = admin_engine(db_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(query, {"n": name}).mappings().first()
    finally:
        engine.dispose()
    return dict(row) if row else None


def scram_matches(verifier: str, password: str) -> bool:
    """Check a PostgreSQL SCRAM-SHA-256 verifier (the server here trusts every login, so check the stored key)."""
    head, keys = verifier.rsplit("$", 1)
    _scheme, iterations_salt = head.split("$", 1)
    iterations, salt = iterations_salt.split(":")
    stored_key = keys.split(":")[0]
    salted = hashlib.pbkdf2_hmac("sha256", unicodedata.normalize("NFKC", password).encode(),
                                 base64.b64decode(salt), int(iterations))
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    return base64.b64encode(hashlib.sha256(client_key).digest()).decode() == stored_key


def connect_as(db_url: str, name: str, password: str):
    return create_engine(login_url(db_url, name, password))


def login(monkeypatch, name: str, password: str) -> None:
    """Act as ``name`` over their own database role, as a user with [login] user/password would."""
    monkeypatch.setenv("PYFI_USER", name)
    monkeypatch.setenv("PYFI_PASSWORD", password)


def as_owner(monkeypatch) -> None:
    monkeypatch.setenv("PYFI_USER", "admin")
    monkeypatch.delenv("PYFI_PASSWORD", raising=False)


@pytest.mark.parametrize("suffix, password", NASTY)
def test_nasty_names_and_passwords_create_alter_and_drop_roles(db_url, db_kind, run_cli, role_prefix, monkeypatch,
                                                                suffix, password):
    name = role_prefix + suffix
    out = ok(run_cli, "add", "user", "-n", name, "-e", "x@y", "-p", password)
    quoted = '"' + name.replace('"', '""') + '"'
    assert out.splitlines() == [f"CREATE USER {quoted} WITH PASSWORD '*****'", f'User "{name}" added']
    made = role(db_url, name)
    assert made["login"] and made["member"]
    assert scram_matches(made["verifier"], password) and not scram_matches(made["verifier"], password + "x")
    engine = connect_as(db_url, name, password)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT current_user")).scalar_one() == name
    engine.dispose()
    login(monkeypatch, name, password)
    who = json.loads(ok(run_cli, "whoami", "--json"))
    assert who == {"database_user": name, "pyfi_user": name, "rights": []}
    as_owner(monkeypatch)
    ok(run_cli, "update", "user", "-n", name, "-p", password + "-new")
    assert scram_matches(role(db_url, name)["verifier"], password + "-new")
    assert ok(run_cli, "delete", "user", "-n", name).splitlines() == [f"DROP USER {quoted}", f'User "{name}" deleted']
    assert role(db_url, name) is None
    assert {u["name"] for u in json.loads(ok(run_cli, "ls", "users", "--json"))["rows"]} == {"admin"}


def test_simple_names_echo_like_the_original_documentation_and_nothing_prints_the_password(db_url, db_kind, run_cli, role_prefix):
    name = role_prefix + "joe"
    result = run_cli("add", "user", input=f"{name}\njoe@xyz\n12345\n12345\n")
    assert result.exit_code == 0, result.output
    assert f"CREATE USER {name} WITH PASSWORD '*****'\nUser \"{name}\" added" in result.output
    assert "12345" not in result.output  # the prompt hides it, the echo masks it


def test_roles_pyfi_did_not_make_are_never_altered_or_dropped(db_url, db_kind, run_cli, role_prefix):
    outsider = role_prefix + "dba"
    engine = admin_engine(db_url)
    with engine.connect() as conn, conn.connection.dbapi_connection.cursor() as cursor:
        cursor.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'keep-me'").format(sql.Identifier(outsider)))
    engine.dispose()
    before = role(db_url, outsider)
    for name in (outsider, "postgres"):
        line = error(run_cli, "add", "user", "-n", name, "-e", "x@y", "-p", "hijack")
        assert f"database role {name!r} exists and is not a pyfi user" in line
    assert role(db_url, outsider) == before and not before["member"]
    assert {u["name"] for u in json.loads(ok(run_cli, "ls", "users", "--json"))["rows"]} == {"admin"}


@pytest.mark.parametrize("name, problem", [
    ("pg_monitor2", "reserved"), ("public", "reserved"), ("pyfi_users", "reserved"), ("x" * 64, "too long"),
])
def test_names_postgres_cannot_hold_are_refused_up_front(db_url, db_kind, run_cli, name, problem):
    before = role(db_url, name)  # None, except for the pyfi_users group itself
    assert problem in error(run_cli, "add", "user", "-n", name, "-e", "x@y", "-p", "pw")
    assert role(db_url, name) == before


@pytest.fixture
def joe_and_alice(db_url, run_cli, role_prefix, monkeypatch):
    """Users joe and alice (ADD/UPDATE/DELETE_PROCESSOR), each with a processor added over their own role."""
    joe, alice = role_prefix + "joe", role_prefix + "alice"
    for who in (joe, alice):
        ok(run_cli, "add", "user", "-n", who, "-e", "x@y", "-p", f"pw-{who}")
        for right in ("ADD_PROCESSOR", "UPDATE_PROCESSOR", "DELETE_PROCESSOR"):
            ok(run_cli, "add", "privilege", "-u", who, "-n", right)
    for who in (joe, alice):
        login(monkeypatch, who, f"pw-{who}")
        ok(run_cli, "add", "processor", "-n", f"{who}-p", "-m", "pkg.sample", "-g", "https://git.example/x.git")
    as_owner(monkeypatch)
    return joe, alice


def raw_rowcount(engine, statement: str, **params) -> int:
    with engine.begin() as conn:
        return conn.execute(text(statement), params).rowcount


def test_rls_joe_cannot_change_alices_processor_even_with_raw_sql(db_url, db_kind, run_cli, monkeypatch,
                                                                   joe_and_alice):
    joe, alice = joe_and_alice
    engine = connect_as(db_url, joe, f"pw-{joe}")
    try:
        update = "UPDATE processors SET module = 'hacked' WHERE name = :n"
        assert raw_rowcount(engine, update, n=f"{alice}-p") == 0
        assert raw_rowcount(engine, "DELETE FROM processors WHERE name = :n", n=f"{alice}-p") == 0
        assert raw_rowcount(engine, update, n=f"{joe}-p") == 1
        for statement in (  # forging ownership, granting oneself ALL, reading hashes: all refused by the database
                "INSERT INTO processors (id, name, owner, module, gitrepo, workers, retries, beat, requested_status,"
                " status, created, lastupdated) VALUES ('f1', 'forged', :a, 'm', 'g', 1, 0, false, 'ready', 'ready',"
                " now(), now())",
                "INSERT INTO privileges (id, \"right\", user_id, created, lastupdated)"
                " SELECT 'p1', 'ALL', id, now(), now() FROM users WHERE name = current_user",
                "SELECT password_hash FROM users"):
            with pytest.raises(Exception, match="row-level security|permission denied"):
                raw_rowcount(engine, statement, a=alice)
        ok(run_cli, "add", "privilege", "-u", joe, "-n", "UPDATE")  # the right for others' objects...
        assert raw_rowcount(engine, update, n=f"{alice}-p") == 1
        ok(run_cli, "delete", "privilege", "-u", joe, "-n", "UPDATE")  # ...and its revoke, at once
        assert raw_rowcount(engine, update, n=f"{alice}-p") == 0
    finally:
        engine.dispose()
    rows = {r["name"]: r for r in json.loads(ok(run_cli, "ls", "processors", "--json"))["rows"]}
    assert rows[f"{alice}-p"]["module"] == "hacked" and rows[f"{alice}-p"]["owner"] == alice
    assert rows[f"{joe}-p"]["owner"] == joe and "forged" not in rows


def test_over_his_own_login_joe_acts_as_joe_whatever_pyfi_user_says(db_url, db_kind, run_cli, monkeypatch,
                                                                       joe_and_alice):
    joe, alice = joe_and_alice
    login(monkeypatch, joe, f"pw-{joe}")
    line = error(run_cli, "update", "processor", "-n", f"{alice}-p", "-w", "5")
    assert f"belongs to {alice!r}" in line and "needs the right UPDATE" in line
    ok(run_cli, "update", "processor", "-n", f"{joe}-p", "-w", "5")
    monkeypatch.setenv("PYFI_DB", login_url(db_url, joe, f"pw-{joe}"))  # credentials in the URL itself
    monkeypatch.setenv("PYFI_USER", "admin")
    monkeypatch.delenv("PYFI_PASSWORD")
    who = json.loads(ok(run_cli, "whoami", "--json"))
    assert who["database_user"] == joe and who["pyfi_user"] == joe and "ALL" not in who["rights"]
    assert "lacks the right DB_DROP" in error(run_cli, "db", "drop", "-y")
    assert f"user {joe!r} lacks the right ADD_USER" in error(run_cli, "add", "user", "-n", "x", "-e", "e", "-p", "p")


def test_user_administration_needs_a_login_that_may_create_roles(db_url, db_kind, run_cli, monkeypatch,
                                                                 joe_and_alice):
    joe, _alice = joe_and_alice
    ok(run_cli, "add", "privilege", "-u", joe, "-n", "ADD_USER")
    login(monkeypatch, joe, f"pw-{joe}")
    newcomer = joe + "2"
    line = error(run_cli, "add", "user", "-n", newcomer, "-e", "e@x", "-p", "pw")
    assert f"cannot manage role {newcomer!r}" in line and "CREATEROLE" in line
    assert role(db_url, newcomer) is None
    as_owner(monkeypatch)
    assert newcomer not in {u["name"] for u in json.loads(ok(run_cli, "ls", "users", "--json"))["rows"]}


def test_the_database_still_refuses_what_a_login_role_cannot_do(db_url, db_kind, run_cli, monkeypatch,
                                                                 joe_and_alice):
    joe, _alice = joe_and_alice
    ok(run_cli, "add", "privilege", "-u", joe, "-n", "DB_DROP")
    login(monkeypatch, joe, f"pw-{joe}")
    line = error(run_cli, "db", "drop", "-y")  # core lets him; PostgreSQL does not: he owns no table
    assert "the database refused" in line and "must be owner" in line
    as_owner(monkeypatch)
    assert json.loads(ok(run_cli, "ls", "processors", "--json"))["total"] == 2
