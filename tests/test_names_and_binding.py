"""Names, socket functions, modules and bindings a user may not choose, through the CLI and core alike.

- No name holds a control or invisible character (one rule for every kind),
  nor one that passes for another (a no-break space, a Hangul filler, the
  braille blank); a processor's name holds no ``.`` (its room is
  ``<queue>.<processor>``).
- A socket's function is a plain public function name (``__class__`` is not).
- A processor's module is never, by its name, the standard library or pyfi.
- A socket is bound to another user's processor, and a plug takes another
  user's socket's results, only with the right for others' objects (UPDATE).
"""
from __future__ import annotations

import json

import pytest

from pyfi.core import objects, users
from pyfi.core.access import Actor
from pyfi.core.kinds import kind
from pyfi.db.engine import session_scope
from pyfi.errors import InvalidInput, PermissionDenied

GIT = "https://github.com/acme/flows.git"
ADMIN = Actor("admin")
BAD_NAMES = ["two\nlines", "tab\there", "esc\x1b[31mred", "right\u202eto-left", "zero\u200bwidth", "line\u2028sep",
             "bell\x07", "q1\u3164", "q1\u034f", "q1\u2800", "no\u00a0break", "wide\u3000space"]


def refused(run_cli, code: int, *args: str) -> str:
    """Run a command that must be refused with ``code``: one ``Error:`` line, no traceback."""
    result = run_cli(*args)
    assert result.exit_code == code, (args, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in result.output, result.output
    return lines[0]


def ok(run_cli, *args: str) -> str:
    result = run_cli(*args)
    assert result.exit_code == 0, (args, result.output)
    return result.stdout


def base_objects(run_cli) -> None:
    ok(run_cli, "add", "queue", "-n", "q1")
    ok(run_cli, "add", "processor", "-n", "p1", "-m", "sample", "-g", GIT)
    ok(run_cli, "add", "socket", "-n", "s1", "-q", "q1", "-pn", "p1", "-t", "echo")
    ok(run_cli, "add", "socket", "-n", "s2", "-q", "q1", "-pn", "p1", "-t", "upper")


def add_command(what: str, name: str) -> list[str]:
    extra = {
        "queue": [],
        "processor": ["-m", "sample", "-g", GIT],
        "socket": ["-q", "q1", "-pn", "p1", "-t", "echo"],
        "plug": ["-q", "q1", "-s", "s1", "-t", "s2"],
        "role": [],
        "node": [],
        "scheduler": [],
        "network": [],
    }[what]
    return ["add", what, "-n", name, *extra]


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_no_kind_of_object_takes_a_name_with_a_control_character(db_url, run_cli, bad):
    base_objects(run_cli)
    before = json.loads(ok(run_cli, "db", "json"))
    for what in ("queue", "processor", "socket", "plug", "role", "node", "scheduler", "network"):
        line = refused(run_cli, 2, *add_command(what, bad))
        assert f"invalid {what} name" in line and "control character" in line, line
        assert "\n" not in line
    line = refused(run_cli, 2, "update", "queue", "-n", "q1", "--rename", bad)  # and no rename to one
    assert "control character" in line
    with pytest.raises(InvalidInput, match="control character"), session_scope(db_url) as session:
        users.add_user(session, ADMIN, bad, "x@y", "pw-x")
    assert json.loads(ok(run_cli, "db", "json")) == before  # nothing was added or changed


def test_a_processor_name_holds_no_dot_so_that_rooms_name_one_processor(db_url, run_cli):
    ok(run_cli, "add", "queue", "-n", "pyfi")
    line = refused(run_cli, 2, "add", "processor", "-n", "queue1.proc1", "-m", "sample", "-g", GIT)
    assert "invalid processor name 'queue1.proc1'" in line and "<queue>.<processor>" in line
    ok(run_cli, "add", "processor", "-n", "p1", "-m", "sample", "-g", GIT)
    assert "holds a '.'" in refused(run_cli, 2, "update", "processor", "-n", "p1", "--rename", "a.b")


def test_a_name_of_printable_unicode_is_welcome(db_url, run_cli):
    ok(run_cli, "add", "queue", "-n", "file d'attente \u00e9t\u00e9 \u2192 \u6f22\u5b57")
    assert "\u6f22\u5b57" in ok(run_cli, "ls", "queues")


@pytest.mark.parametrize("function", ["__class__", "_private", "__init__", "a.b", "do this", "1st"])
def test_a_socket_function_is_a_public_function_name(db_url, run_cli, function):
    base_objects(run_cli)
    line = refused(run_cli, 2, "add", "socket", "-n", "sx", "-q", "q1", "-pn", "p1", "-t", function)
    assert "invalid task function name" in line and "public function" in line
    refused(run_cli, 2, "update", "socket", "-n", "s1", "-t", function)


@pytest.mark.parametrize("module", ["os", "os.path", "subprocess", "builtins", "pyfi", "pyfi.cli", "__main__"])
def test_a_processor_module_is_never_the_standard_library_or_pyfi(db_url, run_cli, module):
    line = refused(run_cli, 2, "add", "processor", "-n", "px", "-m", module, "-g", GIT)
    assert f"module {module!r} is" in line and "not code of the processor's repository" in line
    base_objects(run_cli)
    refused(run_cli, 2, "update", "processor", "-n", "p1", "-m", module)
    assert json.loads(ok(run_cli, "ls", "processor", "-n", "p1", "--json"))["module"] == "sample"


def test_binding_a_socket_to_another_users_processor_needs_update(db_url, run_cli, monkeypatch):
    base_objects(run_cli)  # admin's processor p1 and sockets s1, s2
    with session_scope(db_url) as session:
        users.add_user(session, ADMIN, "alice", "alice@xyz", "pw-alice")
        for right in ("ADD_SOCKET", "UPDATE_SOCKET", "ADD_PROCESSOR", "ADD_PLUG", "UPDATE_PLUG"):
            users.add_privilege(session, ADMIN, right, user="alice")
    monkeypatch.setenv("PYFI_USER", "alice")
    ok(run_cli, "add", "processor", "-n", "alice-p", "-m", "sample", "-g", GIT)
    ok(run_cli, "add", "socket", "-n", "alice-s", "-q", "q1", "-pn", "alice-p", "-t", "echo")
    line = refused(run_cli, 1, "add", "socket", "-n", "sneak", "-q", "q1", "-pn", "p1", "-t", "echo")
    assert "processor 'p1' belongs to 'admin'" in line and "binding a socket to another user's processor" in line
    assert "needs the right UPDATE" in line
    line = refused(run_cli, 1, "update", "socket", "-n", "alice-s", "-pn", "p1")
    assert "binding a socket to another user's processor" in line
    line = refused(run_cli, 1, "add", "plug", "-n", "tap", "-q", "q1", "-s", "s1", "-t", "alice-s")
    assert "socket 's1' belongs to 'admin'" in line and "plugging into the results of another user's socket" in line
    ok(run_cli, "add", "plug", "-n", "mine", "-q", "q1", "-s", "alice-s", "-t", "s1")  # sending on to admin's socket
    line = refused(run_cli, 1, "update", "plug", "-n", "mine", "-s", "s2")
    assert "plugging into the results of another user's socket" in line
    with pytest.raises(PermissionDenied, match="binding a socket"), session_scope(db_url) as session:
        objects.add(session, Actor("alice"), kind("socket"),
                    {"name": "sneak2", "queue": "q1", "processor": "p1", "task": "echo"})
    monkeypatch.setenv("PYFI_USER", "admin")
    assert [s["name"] for s in json.loads(ok(run_cli, "ls", "sockets", "--json"))["rows"]].count("sneak") == 0
    ok(run_cli, "add", "privilege", "-u", "alice", "-n", "UPDATE")
    monkeypatch.setenv("PYFI_USER", "alice")
    ok(run_cli, "add", "socket", "-n", "granted", "-q", "q1", "-pn", "p1", "-t", "echo")
