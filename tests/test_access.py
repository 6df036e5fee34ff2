"""Access control in core, for CLI and Python callers alike, on SQLite and PostgreSQL.

Rights are checked on every operation (a revoke takes effect at once), an
object of another user needs UPDATE/DELETE besides the kind's right, a git
repository outside ``[git] allow`` is refused at add/update and never cloned,
and no password (or anything it could be recovered from) leaves the database.
"""
from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from network import make_repo as shared_make_repo

from pyfi.core import objects, processors, users
from pyfi.core.access import Actor, bootstrap_admin
from pyfi.core.kinds import kind
from pyfi.core.rights_table import command_rights, render_rst
from pyfi.core.trust import repo_allowed
from pyfi.db.engine import session_scope
from pyfi.errors import DeployError, PermissionDenied

GIT = "https://github.com/acme/flows.git"
ADMIN = Actor("admin")
DOCS = Path(__file__).resolve().parent.parent / "docs" / "access.rst"


def ok(run_cli, *args: str) -> str:
    result = run_cli(*args)
    assert result.exit_code == 0, (args, result.output)
    return result.stdout


def denied(run_cli, *args: str) -> str:
    """Run a command that must be refused: exit 1, one ``Error:`` line, no traceback."""
    result = run_cli(*args)
    assert result.exit_code == 1, (args, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in result.output, result.output
    return lines[0]


def add_users(url: str, *names: str, rights: tuple[str, ...] = ()) -> None:
    with session_scope(url) as session:
        for name in names:
            users.add_user(session, ADMIN, name, f"{name}@xyz", f"pw-{name}")
            for right in rights:
                users.add_privilege(session, ADMIN, right, user=name)


def processor_count(url: str) -> int:
    with session_scope(url) as session:
        return objects.listing(session, ADMIN, kind("processor"), rows=1000).total


def as_user(monkeypatch, name: str) -> None:
    monkeypatch.setenv("PYFI_USER", name)


# --- rights -----------------------------------------------------------------

def test_add_processor_needs_add_processor_in_cli_and_core(db_url, run_cli, monkeypatch):
    add_users(db_url, "joe")
    as_user(monkeypatch, "joe")
    line = denied(run_cli, "add", "processor", "-n", "p1", "-m", "pkg.sample", "-g", GIT)
    assert "user 'joe' lacks the right ADD_PROCESSOR" in line and "pyfi add privilege -u joe -n ADD_PROCESSOR" in line
    with pytest.raises(PermissionDenied, match="lacks the right ADD_PROCESSOR"), session_scope(db_url) as session:
        objects.add(session, Actor("joe"), kind("processor"), {"name": "p2", "module": "pkg.sample", "gitrepo": GIT})
    assert processor_count(db_url) == 0
    with session_scope(db_url) as session:
        users.add_privilege(session, ADMIN, "ADD_PROCESSOR", user="joe")
    ok(run_cli, "add", "processor", "-n", "p1", "-m", "pkg.sample", "-g", GIT)
    with session_scope(db_url) as session:
        made = objects.add(session, Actor("joe"), kind("processor"), {"name": "p2", "module": "pkg.sample", "gitrepo": GIT})
        assert made.owner == "joe"
    assert processor_count(db_url) == 2


def test_the_python_client_meets_the_same_check(db_url):
    from pyfi.client import Context, Processor

    add_users(db_url, "joe")
    as_joe = Context(db=db_url, user="joe")
    with pytest.raises(PermissionDenied, match="user 'joe' lacks the right ADD_PROCESSOR"):
        Processor("p1", module="pkg.sample", gitrepo=GIT, context=as_joe)
    assert processor_count(db_url) == 0
    with session_scope(db_url) as session:
        users.add_privilege(session, ADMIN, "ADD_PROCESSOR", user="joe")
    Processor("p1", module="pkg.sample", gitrepo=GIT, context=as_joe)
    assert processor_count(db_url) == 1


def test_role_grant_works_and_revokes_take_effect_at_once(db_url, run_cli, monkeypatch):
    add_users(db_url, "joe")
    ok(run_cli, "add", "role", "-n", "developer")
    ok(run_cli, "add", "privilege", "-r", "developer", "-n", "ADD_PROCESSOR")
    as_user(monkeypatch, "joe")
    assert "lacks the right ADD_PROCESSOR" in denied(run_cli, "add", "processor", "-n", "p1", "-m", "m", "-g", GIT)
    as_user(monkeypatch, "admin")
    ok(run_cli, "add", "role", "-n", "developer", "-u", "joe")
    as_user(monkeypatch, "joe")
    ok(run_cli, "add", "processor", "-n", "p1", "-m", "m", "-g", GIT)
    # a long-lived session of joe's sees the revoke made in another transaction: nothing is cached
    with session_scope(db_url) as joes:
        objects.add(joes, Actor("joe"), kind("processor"), {"name": "p2", "module": "m", "gitrepo": GIT})
        joes.commit()
        with session_scope(db_url) as admins:
            users.delete_privilege(admins, ADMIN, "ADD_PROCESSOR", role="developer")
        with pytest.raises(PermissionDenied, match="lacks the right ADD_PROCESSOR"):
            objects.add(joes, Actor("joe"), kind("processor"), {"name": "p3", "module": "m", "gitrepo": GIT})
    assert "lacks the right ADD_PROCESSOR" in denied(run_cli, "add", "processor", "-n", "p4", "-m", "m", "-g", GIT)
    as_user(monkeypatch, "admin")
    ok(run_cli, "add", "privilege", "-u", "joe", "-n", "ADD_PROCESSOR")
    ok(run_cli, "delete", "role", "-n", "developer", "-u", "joe")
    as_user(monkeypatch, "joe")
    ok(run_cli, "add", "processor", "-n", "p5", "-m", "m", "-g", GIT)
    as_user(monkeypatch, "admin")
    ok(run_cli, "delete", "privilege", "-u", "joe", "-n", "ADD_PROCESSOR")
    as_user(monkeypatch, "joe")
    assert "lacks the right ADD_PROCESSOR" in denied(run_cli, "add", "processor", "-n", "p6", "-m", "m", "-g", GIT)
    assert processor_count(db_url) == 3


def test_another_users_object_needs_update_or_delete_too(db_url, run_cli, monkeypatch):
    rights = ("ADD_PROCESSOR", "UPDATE_PROCESSOR", "DELETE_PROCESSOR", "START_PROCESSOR")
    add_users(db_url, "joe", "alice", rights=rights)
    for who in ("joe", "alice"):
        as_user(monkeypatch, who)
        ok(run_cli, "add", "processor", "-n", f"{who}-p", "-m", "pkg.sample", "-g", GIT)
    as_user(monkeypatch, "joe")
    ok(run_cli, "update", "processor", "-n", "joe-p", "-w", "2")
    ok(run_cli, "proc", "start", "-n", "joe-p")
    line = denied(run_cli, "update", "processor", "-n", "alice-p", "-w", "3")
    assert "processor 'alice-p' belongs to 'alice'" in line and "needs the right UPDATE" in line
    assert "needs the right UPDATE" in denied(run_cli, "proc", "start", "-n", "alice-p")
    assert "needs the right DELETE" in denied(run_cli, "delete", "processor", "-n", "alice-p")
    with pytest.raises(PermissionDenied, match="belongs to 'alice'"), session_scope(db_url) as session:
        processors.request(session, Actor("joe"), "start", "alice-p", None)
    as_user(monkeypatch, "admin")
    shown = json.loads(ok(run_cli, "ls", "processor", "-n", "alice-p", "--json"))
    assert shown["workers"] == 1 and shown["requested_status"] == "ready"
    ok(run_cli, "add", "privilege", "-u", "joe", "-n", "UPDATE")
    as_user(monkeypatch, "joe")
    ok(run_cli, "update", "processor", "-n", "alice-p", "-w", "3")
    assert "needs the right DELETE" in denied(run_cli, "delete", "processor", "-n", "alice-p")
    as_user(monkeypatch, "admin")  # ALL covers everyone's objects
    ok(run_cli, "delete", "processor", "-n", "alice-p")
    ok(run_cli, "delete", "processor", "-n", "joe-p")


# --- code trust -------------------------------------------------------------

@pytest.mark.parametrize("url, allowed", [
    ("https://github.com/acme/flows.git", True),
    ("https://ghp_T0KEN@github.com/acme/flows.git", True),
    ("https://bob:s3cret@github.com/acme/flows.git", True),
    ("https://github.com/evil/flows.git", False),
    ("https://github.com@evil.example/acme/flows.git", False),
    ("https://github.com/acme/../evil/flows.git", False),
    ("https://github.com/acme/%2e%2e/evil/flows.git", False),
    ("/srv/git/flows", True),
    ("/srv/git/../../etc/flows", False),
    ("file:///tmp/flows", False),
])
def test_allow_list_patterns(url, allowed):
    allow = ("https://github.com/acme/*", "/srv/git/*")
    assert repo_allowed(url, allow) is allowed
    assert repo_allowed(url, ())  # no list: no restriction


def test_disallowed_repository_is_refused_at_add_and_update(db_url, run_cli, monkeypatch):
    monkeypatch.setenv("PYFI_GIT_ALLOW", "https://github.com/acme/*, /srv/git/*")
    line = denied(run_cli, "add", "processor", "-n", "p1", "-m", "m", "-g", "https://bob:tok3n@github.com/evil/x.git")
    assert "git repository https://bob:***@github.com/evil/x.git is not in the allowed list" in line
    assert "tok3n" not in line and "[git] allow" in line
    assert processor_count(db_url) == 0
    ok(run_cli, "add", "processor", "-n", "p1", "-m", "m", "-g", "https://bob:tok3n@github.com/acme/x.git")
    assert "not in the allowed list" in denied(run_cli, "update", "processor", "-n", "p1", "-g", "https://evil.example/x")
    shown = ok(run_cli, "ls", "processor", "-n", "p1", "--json") + ok(run_cli, "ls", "processors")
    assert "tok3n" not in shown and "https://bob:***@github.com/acme/x.git" in shown
    with pytest.raises(PermissionDenied, match="not in the allowed list"), session_scope(db_url) as session:
        objects.add(session, Actor("admin", git_allow=("/srv/git/*",)), kind("processor"),
                    {"name": "p2", "module": "m", "gitrepo": GIT})
    assert processor_count(db_url) == 1


def make_repo(path: Path) -> Path:
    return shared_make_repo(path, {"sample.py": "def do_this(x):\n    return x\n"}, "v1")


def test_disallowed_repository_is_never_cloned_by_the_deployer(tmp_path):
    from pyfi.agent.deploy import Deployer

    origin = make_repo(tmp_path / "untrusted" / "flows")
    row = SimpleNamespace(id="p1", name="p1", gitrepo=str(origin), branch=None, commit=None, requirements=None, module="sample")
    root = tmp_path / "work"
    deployer = Deployer(root, git_allow=(f"{tmp_path}/trusted/*",))
    with pytest.raises(DeployError, match="is not in the allowed list"):
        deployer.deploy(row)
    assert not root.exists()  # no git command ran: nothing was fetched or even created
    trusting = Deployer(root, git_allow=(f"{tmp_path}/untrusted/*",))
    assert (trusting.deploy(row).path / "sample.py").exists()


def test_the_agent_records_a_disallowed_repository_as_the_processors_error(db_url, run_cli, tmp_path, monkeypatch):
    from pyfi.agent.agent import Agent
    from pyfi.config import resolve

    origin = make_repo(tmp_path / "untrusted" / "flows")
    ok(run_cli, "add", "processor", "-n", "p1", "-m", "sample", "-g", str(origin))  # added before the list was set
    ok(run_cli, "proc", "start", "-n", "p1")
    monkeypatch.setenv("PYFI_GIT_ALLOW", f"{tmp_path}/trusted/*")
    agent = Agent(resolve(), name="a1", workdir=tmp_path / "agent")
    agent.reconcile_once()
    shown = json.loads(ok(run_cli, "ls", "processor", "-n", "p1", "--json"))
    assert shown["status"] == "error" and "is not in the allowed list" in shown["error"]
    assert not (tmp_path / "agent" / "repos").exists() and not agent.handles


# --- no secrets out ---------------------------------------------------------

def test_db_json_holds_no_password_nor_anything_it_could_be_recovered_from(db_url, run_cli):
    from sqlalchemy import select

    from pyfi.db.models import SigningKey, User

    password = "Corr3ct-Horse-Battery-Staple"
    ok(run_cli, "add", "user", "-n", "joe", "-e", "joe@xyz", "-p", password)
    ok(run_cli, "update", "user", "-n", "joe", "-p", password + "-2")
    dump = ok(run_cli, "db", "json")
    with session_scope(db_url) as session:
        stored = session.scalar(select(User.password_hash).where(User.name == "joe"))
    scheme, *_params, salt, digest = stored.split("$")
    assert scheme == "scrypt" and password not in stored
    for secret in (password, password + "-2", base64.b64encode(password.encode()).decode(), password.encode().hex(),
                   stored, salt, digest, "scrypt$", "SCRAM-SHA-256", "password"):
        assert secret not in dump, secret
    joe = [u for u in json.loads(dump)["users"] if u["name"] == "joe"][0]
    assert set(joe) == {"id", "name", "owner", "created", "lastupdated", "email"}
    with session_scope(db_url) as session:  # nor the private half of a signing key
        private = session.scalars(select(SigningKey.private_key)).all()
    assert private and not any(key in dump for key in private)
    assert all("private_key" not in key for key in json.loads(dump)["signing_keys"])


# --- the right-per-command table ---------------------------------------------

def test_docs_carry_the_generated_right_per_command_table():
    text = DOCS.read_text(encoding="utf-8")
    table = render_rst()
    assert table in text, "docs/access.rst is stale: paste `python -m pyfi.core.rights_table` into it"
    for command in ("add processor", "ls processors", "proc start", "task run", "db drop", "add user"):
        assert f"``pyfi {command}``" in table


#: invocations that reach the rights check of commands whose arguments are not just ``-n x``
EXAMPLES = {
    "add user": ["add", "user", "-n", "x", "-e", "e@x", "-p", "pw"],
    "add role": ["add", "role", "-n", "x"],
    "add role -u USER": ["add", "role", "-n", "x", "-u", "admin"],
    "add privilege": ["add", "privilege", "-u", "admin", "-n", "READ"],
    "delete role -u USER": ["delete", "role", "-n", "x", "-u", "admin"],
    "delete privilege": ["delete", "privilege", "-u", "admin", "-n", "READ"],
    "ls call": ["ls", "call", "--id", "x"],
    "task run": ["task", "run", "-s", "x", "-d", "1"],
    "task cancel": ["task", "cancel", "--id", "x"],
    "db migrate": ["db", "migrate"], "db drop": ["db", "drop", "-y"], "db rebuild": ["db", "rebuild", "-y"],
    "db json": ["db", "json"],
    "scheduler add": ["scheduler", "-n", "x", "add", "--node", "y"],
    "scheduler remove": ["scheduler", "-n", "x", "remove", "--node", "y"],
    "scheduler start": ["scheduler", "start", "-n", "x"],
}
UNCHECKED = {"db init", "whoami", "agent start"}  # no right, no right, its own test (it would run an agent)


def example(command: str) -> list[str]:
    if command in EXAMPLES:
        return EXAMPLES[command]
    words = command.split()
    if words[0] == "ls" and words[1].endswith("s"):
        return words
    return words + ["-n", "x"]


def kind_of(command: str):
    from pyfi.core.kinds import KINDS

    found = KINDS.get(command.split()[1])
    return found if command.startswith("add ") and found and found.name not in ("user", "role") else None


def test_every_command_asks_for_the_right_the_table_names(db_url, run_cli, monkeypatch):
    """A user without rights meets exactly the right the table gives, command by command."""
    add_users(db_url, "nobody")
    as_user(monkeypatch, "nobody")
    rows = [(command, right.split(";")[0]) for command, right in command_rights() if command not in UNCHECKED]
    for command, needed in rows:
        if kind_of(command):  # `add KIND` options differ per kind; the CLI calls exactly this
            with pytest.raises(PermissionDenied, match=rf"lacks the right {needed}\b"), session_scope(db_url) as session:
                objects.add(session, Actor("nobody"), kind_of(command), {"name": "x"})
            continue
        line = denied(run_cli, *example(command))
        assert re.search(rf"lacks the right {needed}\b", line), (command, line)
    assert len(rows) > 70


def test_agent_start_needs_start_agent(db_url, run_cli, monkeypatch):
    add_users(db_url, "nobody")
    as_user(monkeypatch, "nobody")
    assert "lacks the right START_AGENT" in denied(run_cli, "agent", "start")


def test_bootstrap_admin_holds_all(db_url):
    from pyfi.core.access import rights_of

    with session_scope(db_url) as session:
        bootstrap_admin(session, "admin")
        assert {r.value for r in rights_of(session, "admin")} == {"ALL"}
