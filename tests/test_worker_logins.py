"""A processor's workers' database login can record that processor's calls and nothing more.

This is what processor code could steal from its own worker (its memory
holds the login): tried here with raw SQL on a scram-sha-256 cluster of the
tests' own, as the login an agent issues.
"""
from __future__ import annotations

import psycopg2
import pytest
from sqlalchemy import select, text

from pgcluster import attempt, login
from pyfi.core import objects, users, worker_logins
from pyfi.core.access import Actor
from pyfi.core.kinds import kind
from pyfi.db.engine import session_scope
from pyfi.db.models import Processor, Socket, WorkerLogin

ADMIN, ALICE = Actor("admin"), Actor("alice")
GIT = "https://github.com/acme/flows.git"


def ids(url: str) -> dict[str, str]:
    with session_scope(url) as session:
        found = {p.name: p.id for p in session.scalars(select(Processor))}
        found.update({s.name: s.id for s in session.scalars(select(Socket))})
    return found


@pytest.fixture
def two_processors(scram_db):
    """admin's processor p (sockets s, t); alice's processor ap (socket as) with a plug from as into admin's t."""
    url, _ = scram_db
    with session_scope(url) as session:
        users.add_user(session, ADMIN, "alice", "a@x", "pw-alice")
        for right in ("ADD_PROCESSOR", "ADD_SOCKET", "ADD_PLUG", "ADD_QUEUE"):
            users.add_privilege(session, ADMIN, right, user="alice")
        for actor, kind_name, fields in (
            (ADMIN, "queue", {"name": "q"}),
            (ADMIN, "processor", {"name": "p", "module": "sample", "gitrepo": GIT}),
            (ADMIN, "socket", {"name": "s", "queue": "q", "processor": "p", "task": "echo"}),
            (ADMIN, "socket", {"name": "t", "queue": "q", "processor": "p", "task": "upper"}),
            (ALICE, "processor", {"name": "ap", "module": "sample", "gitrepo": GIT}),
            (ALICE, "socket", {"name": "as", "queue": "q", "processor": "ap", "task": "echo"}),
            (ALICE, "plug", {"name": "into-t", "queue": "q", "source": "as", "target": "t"}),
        ):
            objects.add(session, actor, kind(kind_name), fields)
        session.execute(text("INSERT INTO calls (id, name, owner, state, socket_id, created, lastupdated)"
                             " SELECT 'admins-call', 'sample.echo', 'admin', 'finished', id, now(), now()"
                             " FROM sockets WHERE name = 's'"))
    found = ids(url)
    with session_scope(url) as session:
        role, password = worker_logins.issue(session, found["ap"], "n1")
    return url, found, login(url, role, password)


def call(call_id: str, socket_id: str | None, owner: str = "alice") -> tuple[str, tuple]:
    return ("INSERT INTO calls (id, name, owner, state, socket_id, created, lastupdated)"
            " VALUES (%s, 'sample.echo', %s, 'running', %s, now(), now())", (call_id, owner, socket_id))


def test_a_workers_login_records_its_own_processors_calls(two_processors):
    _url, found, worker = two_processors
    assert attempt(worker, *call("c1", found["as"])) == "ok: 1 rows"
    assert attempt(worker, "UPDATE calls SET state = 'finished' WHERE id = 'c1'") == "ok: 1 rows"
    assert attempt(worker, "INSERT INTO events (id, name, call_id, created, lastupdated) VALUES ('e1', 'postrun',"
                           " 'c1', now(), now())") == "ok: 1 rows"
    assert attempt(worker, "INSERT INTO join_arrivals (id, tracking, socket_id, position, created)"
                           " VALUES ('a1', 'flow', %s, 0, now())", (found["t"],)) == "ok: 1 rows"  # its plug's join
    assert attempt(worker, "SELECT * FROM privileges").startswith("ok")  # it reads the network (rights, keys)


@pytest.mark.parametrize("statement, params", [
    call("c2", "{s}"),  # a call of another processor's socket
    call("c3", None, owner="admin"),  # a socket-less call of someone else
    call("c4", None),  # a socket-less call at all: it could take the id of a call another processor's worker runs
    ("UPDATE calls SET state = 'failed', error = 'forged' WHERE id = 'admins-call'", ()),
    ("DELETE FROM calls", ()),
    ("DELETE FROM events", ()),
    ("INSERT INTO events (id, name, call_id, created, lastupdated) VALUES ('e2', 'postrun', 'admins-call', now(),"
     " now())", ()),
    ("INSERT INTO call_parents (call_id, parent_id) VALUES ('x', 'admins-call')", ()),
    ("INSERT INTO join_arrivals (id, tracking, socket_id, position, created) VALUES ('a2', 'f', '{s}', 0, now())", ()),
    ("INSERT INTO privileges (id, \"right\", user_id, owner, created, lastupdated) SELECT 'x', 'ALL', id, 'alice',"
     " now(), now() FROM users WHERE name = 'alice'", ()),
    ("UPDATE processors SET module = 'evil'", ()),
    ("UPDATE sockets SET task_id = task_id", ()),
    ("INSERT INTO tasks (id, name, module, created, lastupdated) VALUES ('t', 'system', 'os', now(), now())", ()),
    ("DELETE FROM worker_logins", ()),
    ("SELECT private_key FROM signing_keys", ()),
    ("SELECT * FROM pyfi_my_signing_key()", ()),
    ("SELECT password_hash FROM users", ()),
    ("CREATE TABLE mine (x int)", ()),
    ("SET ROLE pyfi_users", ()),
])
def test_a_workers_login_can_do_nothing_else(two_processors, statement, params):
    _url, found, worker = two_processors
    statement = statement.replace("{s}", found["s"])
    params = tuple(found["s"] if p == "{s}" else p for p in params)
    result = attempt(worker, statement, params)
    assert result.startswith("refused") or result == "ok: 0 rows", result


def test_each_issue_gives_a_new_password_and_a_gone_processor_loses_its_login(two_processors):
    url, found, worker = two_processors
    role = worker_logins.role_name(found["ap"], "n1")
    with session_scope(url) as session:
        _, new_password = worker_logins.issue(session, found["ap"], "n1")
    login(url, role, new_password).close()
    with session_scope(url) as session:
        objects.delete(session, ADMIN, kind("processor"), "ap", None)
        assert worker_logins.sweep(session, "n1", keep=set()) == [role]
        assert session.scalar(select(WorkerLogin)) is None
    with pytest.raises(psycopg2.OperationalError):
        login(url, role, new_password)


def test_a_users_role_is_never_taken_for_a_workers_login(two_processors):
    """pyfi_w_ names workers' logins: no user may take one, and a sweep drops only members of pyfi_workers."""
    from pyfi.errors import InvalidInput

    url, _found, _worker = two_processors
    with session_scope(url) as session, pytest.raises(InvalidInput, match="reserved"):
        users.add_user(session, ADMIN, "pyfi_w_joe", "j@x", "pw")
    with session_scope(url) as session:  # a role of that name made some other way (a DBA's, say)
        database = session.scalar(text("SELECT current_database()"))
        session.execute(text("CREATE ROLE pyfi_w_dba LOGIN"))
        session.execute(text(f'GRANT CONNECT ON DATABASE "{database}" TO pyfi_w_dba'))
    try:
        with session_scope(url) as session:
            assert "pyfi_w_dba" not in worker_logins.sweep(session, "n1", keep=set())
            assert session.scalar(text("SELECT count(*) FROM pg_roles WHERE rolname = 'pyfi_w_dba'")) == 1
    finally:
        with session_scope(url) as session:
            session.execute(text(f'REVOKE CONNECT ON DATABASE "{database}" FROM pyfi_w_dba'))
            session.execute(text("DROP ROLE pyfi_w_dba"))
