"""Raw SQL over a pyfi user's own login does no more than the CLI lets that user do.

On a PostgreSQL cluster of the tests' own with scram-sha-256 passwords: the
database checks every login's password, so each user here is who they
authenticated as. Each attack below was once possible; each must now be
refused by the database itself (a grant, row-level security, a trigger, a
CHECK constraint), whatever the client.
"""
from __future__ import annotations

import json
import subprocess
import sys

import psycopg2
import pytest
from sqlalchemy.engine import make_url

from pgcluster import attempt, login
from pyfi.core import objects, users
from pyfi.core.access import Actor
from pyfi.core.kinds import kind
from pyfi.db.engine import session_scope

ADMIN = Actor("admin")
GIT = "https://github.com/acme/flows.git"
CALL = "c0ffee00-0000-4000-8000-000000000001"


def changed_nothing(result: str) -> bool:
    return result.startswith("refused") or result == "ok: 0 rows"


def network_of_admin(url: str) -> None:
    """admin's queue, processor, sockets, plug, node, agent, worker, scheduler, deployment, network and a call."""
    with session_scope(url) as session:
        for kind_name, fields in (
            ("queue", {"name": "q"}),
            ("processor", {"name": "p", "module": "sample", "gitrepo": GIT}),
            ("socket", {"name": "s", "queue": "q", "processor": "p", "task": "echo"}),
            ("socket", {"name": "t", "queue": "q", "processor": "p", "task": "upper"}),
            ("plug", {"name": "pl", "queue": "q", "source": "s", "target": "t"}),
            ("node", {"name": "n1"}),
            ("agent", {"name": "a1", "node": "n1"}),
            ("worker", {"name": "w1", "agent": "a1", "processor": "p"}),
            ("scheduler", {"name": "sch"}),
            ("deployment", {"name": "d1", "processor": "p", "hostname": "n1"}),
            ("network", {"name": "net"}),
        ):
            objects.add(session, ADMIN, kind(kind_name), fields)
        for name, rights in (("joe", ()), ("alice", ("ADD_PROCESSOR", "PAUSE_PROCESSOR", "ADD_SOCKET", "READ"))):
            users.add_user(session, ADMIN, name, f"{name}@xyz", f"pw-{name}")
            for right in rights:
                users.add_privilege(session, ADMIN, right, user=name)
        session.execute(__import__("sqlalchemy").text(
            "INSERT INTO calls (id, name, owner, state, created, lastupdated) VALUES (:id, 'sample.echo', 'admin',"
            " 'finished', now(), now())"), {"id": CALL})
        session.execute(__import__("sqlalchemy").text(
            "INSERT INTO events (id, name, call_id, created, lastupdated) VALUES (:id, 'postrun', :call, now(), now())"),
            {"id": CALL, "call": CALL})


ATTACKS_WITHOUT_RIGHTS = [
    "UPDATE tasks SET name = 'shout' WHERE name = 'echo'",  # re-point admin's socket to another function
    "UPDATE tasks SET module = 'os', name = 'system' WHERE name = 'echo'",
    "DELETE FROM tasks",
    "DELETE FROM calls",
    "DELETE FROM events",
    "UPDATE calls SET state = 'failed', error = 'forged'",
    f"INSERT INTO calls (id, name, owner, state, created, lastupdated) VALUES ('{CALL[:-1]}2', 'sample.echo', 'admin',"
    " 'finished', now(), now())",
    f"INSERT INTO events (id, name, call_id, created, lastupdated) VALUES ('e2', 'postrun', '{CALL}', now(), now())",
    "INSERT INTO call_parents (call_id, parent_id) VALUES ('a', 'b')",
    "UPDATE nodes SET hostname = 'evil'",
    "DELETE FROM nodes",
    "INSERT INTO nodes (id, name, owner, created, lastupdated) VALUES ('n2', 'n2', 'joe', now(), now())",
    "UPDATE agents SET status = 'stopped'",
    "DELETE FROM agents",
    "UPDATE workers SET status = 'crashed'",
    "DELETE FROM workers",
    "UPDATE deployments SET hostname = 'evil'",
    "DELETE FROM deployments",
    "INSERT INTO deployments (id, name, owner, processor_id, hostname, cpus, created, lastupdated) SELECT 'd2', 'd2',"
    " 'joe', id, 'n1', 1, now(), now() FROM processors",
    "UPDATE schedulers SET strategy = 'EFFICIENT'",
    "DELETE FROM networks",
    "INSERT INTO scheduler_nodes (scheduler_id, node_id) SELECT s.id, n.id FROM schedulers s, nodes n",
    "UPDATE processors SET module = 'os'",
    "UPDATE processors SET requested_status = 'stopped'",
    "UPDATE processors SET owner = 'joe'",
    "UPDATE sockets SET processor_id = processor_id",
    "DELETE FROM plugs",
    "INSERT INTO privileges (id, \"right\", user_id, owner, created, lastupdated) SELECT 'x', 'ALL', id, 'joe', now(),"
    " now() FROM users WHERE name = 'joe'",
    "UPDATE users SET email = 'evil@x'",
    "UPDATE privileges SET \"right\" = 'ALL'",
    "INSERT INTO tasks (id, name, module, created, lastupdated) VALUES ('t9', 'system', 'os', now(), now())",
]


@pytest.mark.parametrize("statement", ATTACKS_WITHOUT_RIGHTS)
def test_a_login_without_rights_changes_nothing_with_raw_sql(scram_db, statement):
    url, _ = scram_db
    network_of_admin(url)
    with session_scope(url) as session:
        before = dump(session)
    result = attempt(login(url, "joe", "pw-joe"), statement)
    assert changed_nothing(result), result
    with session_scope(url) as session:
        assert dump(session) == before


def dump(session) -> dict:
    from sqlalchemy import text

    tables = ("queues", "processors", "sockets", "plugs", "tasks", "calls", "events", "call_parents", "nodes",
              "agents", "workers", "schedulers", "scheduler_nodes", "deployments", "networks", "privileges", "users")
    return {t: sorted(map(str, session.execute(text(f"SELECT * FROM {t}")).all())) for t in tables}  # noqa: S608


def test_a_login_without_rights_reads_nothing_but_itself_and_one_with_a_right_reads_the_network(scram_db):
    url, _ = scram_db
    network_of_admin(url)
    joe, alice = login(url, "joe", "pw-joe"), login(url, "alice", "pw-alice")
    for table in ("queues", "processors", "sockets", "plugs", "tasks", "nodes", "agents", "workers", "deployments",
                  "networks", "signing_keys", "roles", "installation"):
        assert attempt(joe, f"SELECT id FROM {table}") == "ok: 0 rows", table  # as `ls` would refuse him
        assert attempt(alice, f"SELECT id FROM {table}") != "ok: 0 rows" or table in ("roles",), table
    assert attempt(joe, "SELECT name FROM users") == "ok: 1 rows"  # his own (pyfi whoami)
    assert attempt(alice, "SELECT name FROM users") == "ok: 3 rows"
    assert attempt(joe, "SELECT * FROM privileges") == "ok: 0 rows"


def test_history_is_read_only_and_needs_read(scram_db):
    url, _ = scram_db
    network_of_admin(url)
    joe, alice = login(url, "joe", "pw-joe"), login(url, "alice", "pw-alice")
    assert attempt(joe, "SELECT * FROM calls") == "ok: 0 rows"  # joe lacks READ, as `ls calls` would say
    assert attempt(joe, "SELECT * FROM events") == "ok: 0 rows"
    assert attempt(alice, "SELECT * FROM calls") == "ok: 1 rows"  # alice holds READ
    for statement in ("DELETE FROM calls", "UPDATE events SET note = 'x'", "TRUNCATE calls"):
        assert attempt(alice, statement).startswith("refused"), statement


def test_proc_rights_allow_exactly_their_change_of_ones_own_processor(scram_db):
    url, _ = scram_db
    network_of_admin(url)
    alice = login(url, "alice", "pw-alice")  # ADD_PROCESSOR and PAUSE_PROCESSOR
    ok = "INSERT INTO processors (id, name, owner, module, gitrepo, workers, retries, beat, requested_status, status," \
         " created, lastupdated) VALUES ('ap', 'ap', 'alice', 'sample', 'x', 1, 0, false, 'ready', 'ready', now(), now())"
    assert attempt(alice, ok) == "ok: 1 rows"
    assert attempt(alice, ok.replace("'ap', 'ap', 'alice'", "'bp', 'bp', 'admin'")).startswith("refused")  # not hers
    assert attempt(alice, "UPDATE processors SET requested_status = 'paused' WHERE id = 'ap'") == "ok: 1 rows"
    for forbidden in ("UPDATE processors SET requested_status = 'running' WHERE id = 'ap'",  # needs START_PROCESSOR
                      "UPDATE processors SET module = 'evil' WHERE id = 'ap'",  # needs UPDATE_PROCESSOR
                      "UPDATE processors SET status = 'running' WHERE id = 'ap'",  # agents only
                      "UPDATE processors SET owner = 'admin' WHERE id = 'ap'",
                      "UPDATE processors SET requested_status = 'paused' WHERE name = 'p'"):  # admin's
        assert changed_nothing(attempt(alice, forbidden)), forbidden
    socket = "INSERT INTO sockets (id, name, owner, processor_id, queue_id, task_id, wait, created, lastupdated)" \
             " SELECT 'as', 'as', 'alice', {}, q.id, t.id, false, now(), now() FROM queues q, tasks t LIMIT 1"
    assert attempt(alice, socket.format("(SELECT id FROM processors WHERE name = 'p')")).startswith("refused")
    assert attempt(alice, socket.format("'ap'")) == "ok: 1 rows"


NEW_PROCESSOR = ("INSERT INTO processors (id, name, owner, module, gitrepo, branch, workers, retries, beat,"
                 " requested_status, status, error, created, lastupdated) VALUES (%s, %s, 'alice', 'sample', %s, %s, 1,"
                 " 0, false, 'ready', %s, %s, now(), now())")


def new_processor(name: str, gitrepo: str = "x", branch: str = "main", status: str = "ready",
                  error: str | None = None) -> tuple[str, tuple]:
    return NEW_PROCESSOR, (name[:8], name, gitrepo, branch, status, error)


def test_names_and_text_the_cli_refuses_are_refused_by_the_database_too(scram_db):
    url, _ = scram_db
    network_of_admin(url)
    alice = login(url, "alice", "pw-alice")
    for name in ("two\nlines", "esc\x1b[2J", "rtl\u202eevil", "p\u3164", "p\u034f", "p\u2800", "no\u00a0break",
                 " p", "p ", "", "queue1.proc1"):
        result = attempt(alice, *new_processor(name))
        assert "ck_processors_visible_name" in result, (name, result)
    for column, value in (("gitrepo", "x\n|  1 | FAKE-ROW"), ("branch", "main\x1b[2J")):
        fields = {"gitrepo": "x", "branch": "main", column: value}
        result = attempt(alice, *new_processor("ap", fields["gitrepo"], fields["branch"]))
        assert f"ck_processors_{column}_printable" in result, result
    for status, error in (("running", None), ("ready", "\x1b[2Jfake")):  # only agents write a processor's status
        assert "only agents write its status" in attempt(alice, *new_processor("ap", status=status, error=error))
    assert attempt(alice, *new_processor("ap")) == "ok: 1 rows"
    assert "ck_tasks_public_function" in attempt(
        alice, "INSERT INTO tasks (id, name, module, created, lastupdated) VALUES ('t', '__class__', 'sample', now(),"
               " now())")
    owner = psycopg2.connect(url.replace("+psycopg2", ""))  # even the database owner
    owner.autocommit = True
    assert "ck_queues_visible_name" in attempt(
        owner, "INSERT INTO queues (id, name, owner, type, durable, created, lastupdated) VALUES ('q2', 'q ', 'admin',"
               " 'direct', true, now(), now())")
    owner.close()


@pytest.mark.parametrize("right, statement", [
    ("UPDATE_PRIVILEGE", "UPDATE privileges SET \"right\" = 'ALL' WHERE user_id = (SELECT id FROM users WHERE name = 'bob')"),
    ("UPDATE_PRIVILEGE", "UPDATE privileges SET user_id = (SELECT id FROM users WHERE name = 'bob')"),
    ("UPDATE_ROLE", "UPDATE roles SET owner = 'bob'"),
    ("ADD_USER", "INSERT INTO users (id, name, email, owner, created, lastupdated) VALUES ('m', 'mallory', 'm@x', 'bob',"
                 " now(), now())"),
])
def test_a_right_no_command_uses_grants_nothing_through_raw_sql(scram_db, right, statement):
    """Privileges and roles never change once written; a user row needs its database role (made with CREATEROLE)."""
    url, _ = scram_db
    network_of_admin(url)
    with session_scope(url) as session:
        users.add_user(session, ADMIN, "bob", "b@xyz", "pw-bob")
        users.add_privilege(session, ADMIN, right, user="bob")
        users.add_role(session, ADMIN, "developer")
        before = dump(session)
    result = attempt(login(url, "bob", "pw-bob"), statement)
    assert changed_nothing(result), result
    with session_scope(url) as session:
        assert dump(session) == before
    assert "ALL" not in pyfi(url, "bob", "pw-bob", "whoami").stdout


def pyfi(url: str, user: str, password: str | None, *args: str, db: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("PYFI_")}
    env.update(PYFI_DB=db or url, PYFI_USER=user, PYFI_HOME=env.get("HOME", "/tmp") + "/.pyfi-attacks")
    if password:
        env["PYFI_PASSWORD"] = password
    return subprocess.run([sys.executable, "-m", "pyfi.cli", *args], env=env, capture_output=True, text=True, timeout=60)


def test_a_role_switched_to_in_the_connection_names_no_one(scram_db):
    """joe logs in with his password but asks for ``-c role=pyfi_users`` and names admin: he is still joe."""
    url, _ = scram_db
    network_of_admin(url)
    parsed = make_url(url)
    spoof = parsed.set(username="joe", password="pw-joe", query={"options": "-c role=pyfi_users"})
    spoof_url = spoof.render_as_string(hide_password=False)
    conn = login(url, "joe", "pw-joe", options="-c role=pyfi_users")
    with conn.cursor() as cursor:
        cursor.execute("SELECT current_user, session_user")
        assert cursor.fetchone() == ("pyfi_users", "joe")  # the switch happened; it grants nothing
    shown = pyfi(url, "admin", None, "whoami", db=spoof_url)
    assert shown.returncode == 0 and "Pyfi user: joe" in shown.stdout and "Rights: ALL" not in shown.stdout, shown
    for args in (("add", "node", "-n", "evil"), ("add", "network", "-n", "evil"), ("db", "json")):
        refused = pyfi(url, "admin", None, *args, db=spoof_url)
        assert refused.returncode == 1 and "user 'joe' lacks the right" in refused.stderr, (args, refused.stderr)
    assert attempt(conn, "UPDATE tasks SET name = 'upper'").startswith("refused")


def test_the_cli_over_a_users_own_login_still_does_what_their_rights_allow(scram_db):
    url, _ = scram_db
    network_of_admin(url)
    steps = [("add", "processor", "-n", "ap", "-m", "sample", "-g", GIT),
             ("add", "socket", "-n", "as", "-q", "q", "-pn", "ap", "-t", "shout"),  # a new task row
             ("proc", "pause", "-n", "ap"),
             ("ls", "calls")]
    for args in steps:
        done = pyfi(url, "alice", "pw-alice", *args)
        assert done.returncode == 0, (args, done.stderr)
    refused = pyfi(url, "alice", "pw-alice", "proc", "start", "-n", "ap")
    assert refused.returncode == 1 and "lacks the right START_PROCESSOR" in refused.stderr
    shown = json.loads(pyfi(url, "admin", None, "ls", "processor", "-n", "ap", "--json").stdout)
    assert shown["owner"] == "alice" and shown["requested_status"] == "paused"


def test_a_user_of_one_database_is_neither_adopted_silently_nor_let_into_another(scram_db):
    url, cluster = scram_db
    with session_scope(url) as session:
        users.add_user(session, ADMIN, "joe", "joe@xyz", "pw-joe")
    other_url, _, _ = cluster.new_database()
    from pyfi.db import migrate

    migrate.upgrade(other_url)
    with session_scope(other_url) as session:
        from pyfi.core.access import bootstrap_admin

        bootstrap_admin(session, "admin")
    with pytest.raises(psycopg2.OperationalError, match="permission denied for database"):
        login(other_url, "joe", "pw-joe")  # the first database's joe cannot even connect to the second
    added = pyfi(url, "admin", None, "add", "user", "-n", "joe", "-e", "j@x", "-p", "other-pw", db=other_url)
    assert added.returncode == 2 and "already exists on this server" in added.stderr, added.stderr
    assert make_url(url).database in added.stderr and "--adopt" in added.stderr
    assert "CREATE USER" not in added.stdout
    login(url, "joe", "pw-joe").close()  # his password is unchanged
    adopted = pyfi(url, "admin", None, "add", "user", "-n", "joe", "-e", "j@x", "-p", "other-pw", "--adopt",
                   db=other_url)
    assert adopted.returncode == 0, adopted.stderr
    assert "ALTER USER joe WITH PASSWORD '*****': the existing role is adopted" in adopted.stdout
    assert make_url(url).database in adopted.stdout
    login(other_url, "joe", "other-pw").close()
    removed = pyfi(url, "admin", None, "delete", "user", "-n", "joe", db=other_url)
    assert removed.returncode == 0 and "REVOKE CONNECT" in removed.stdout and "the role stays" in removed.stdout
    login(url, "joe", "other-pw").close()  # still a user of the first database
    with pytest.raises(psycopg2.OperationalError, match="permission denied for database"):
        login(other_url, "joe", "other-pw")
    removed = pyfi(url, "admin", None, "delete", "user", "-n", "joe")
    assert removed.returncode == 0 and "DROP USER joe" in removed.stdout


def test_a_sender_records_only_its_own_pending_calls_and_a_canceller_only_cancels(scram_db):
    from pyfi.core.cancelling import cancel
    from pyfi.core.pending import Pending, record_pending

    url, _ = scram_db
    network_of_admin(url)
    with session_scope(url) as session:
        socket = session.execute(__import__("sqlalchemy").text("SELECT id FROM sockets WHERE name = 's'")).scalar_one()
        for right in ("RUN_TASK", "CANCEL_TASK"):
            users.add_privilege(session, ADMIN, right, user="joe")
    joe_url = make_url(url).set(username="joe", password="pw-joe").render_as_string(hide_password=False)
    with session_scope(joe_url) as session:  # what `task run` records, over joe's own login
        record_pending(session, "joe", [Pending("c1", "sample.echo", socket), Pending("c2", "sample.echo", socket)])
    joe = login(url, "joe", "pw-joe")
    pending = ("INSERT INTO calls (id, name, socket_id, state, sender, created, lastupdated) VALUES (%s, 'sample.echo',"
               " %s, %s, %s, now(), now())")
    for forged in (("f1", socket, "finished", "joe"), ("f2", socket, "pending", "admin"), ("f3", None, "pending", "joe"),
                   ("f4", socket, "cancelled", "joe")):
        assert attempt(joe, pending, forged).startswith("refused"), forged
    assert attempt(joe, "UPDATE calls SET error = 'forged' WHERE id = 'c1'").startswith("refused")  # not a column of his
    for statement in ("UPDATE calls SET state = 'finished' WHERE id = 'c1'",
                      "UPDATE calls SET state = 'cancelled', cancelled_by = 'admin', cancelled = now() WHERE id = 'c1'",
                      f"UPDATE calls SET state = 'cancelled', cancelled_by = 'joe', cancelled = now() WHERE id = '{CALL}'"):
        assert changed_nothing(attempt(joe, statement)), statement  # only an open call, only as himself
    with session_scope(joe_url) as session:
        (outcome,) = cancel(session, Actor("joe"), "c1")
    assert outcome.cancelled
    with session_scope(url) as session:
        rows = session.execute(__import__("sqlalchemy").text(
            "SELECT id, state, sender, cancelled_by FROM calls WHERE id IN ('c1', 'c2') ORDER BY id")).all()
    assert [tuple(r) for r in rows] == [("c1", "cancelled", "joe", "joe"), ("c2", "pending", "joe", None)]
