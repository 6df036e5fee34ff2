"""Bad input to the CLI, as a user meets it: one line naming the problem and its fix, and nothing done.

Embedded default only (SQLite database, broker and result backend under
PYFI_HOME): none of these needs a server, and a refused port
(``localhost:1``) stands for an unreachable broker or backend.
"""
from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

GIT = "https://github.com/acme/flows.git"


@pytest.fixture
def db_kind() -> str:
    """Overrides conftest's: these are input checks, the database kind does not matter."""
    return "sqlite"


@pytest.fixture
def flow(db_url: str, run_cli) -> str:
    """Queue q1, processor p1 (module absent here) and its sockets b (echo) and slow."""
    ok(run_cli, "add", "queue", "-n", "q1")
    ok(run_cli, "add", "processor", "-n", "p1", "-m", "pyfi_qa_absent_module", "-g", GIT)
    ok(run_cli, "add", "socket", "-n", "b", "-q", "q1", "-pn", "p1", "-t", "echo")
    ok(run_cli, "add", "socket", "-n", "slow", "-q", "q1", "-pn", "p1", "-t", "slow")
    return db_url


def ok(run_cli, *args: str, input: str | bytes | None = None) -> str:
    result = run_cli(*args, input=input)
    assert result.exit_code == 0, (args, result.output)
    return result.stdout


def error(run_cli, exit_code: int, *args: str, input: str | bytes | None = None) -> str:
    """Run a failing command; return its one ``Error:`` line (after click's Usage header, for its own errors)."""
    result = run_cli(*args, input=input)
    assert result.exit_code == exit_code, (args, result.output)
    assert "Traceback" not in result.output and "unexpected" not in result.output, result.output
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("Error: "), result.output
    if not lines[0].startswith("Usage:"):
        assert len(lines) == 1, result.stderr
    return lines[-1]


def queued(home: Path) -> int:
    """Messages in the embedded broker: what `task run` has sent (no worker runs in these tests)."""
    path = home / "broker.db"
    if not path.exists():
        return 0
    with sqlite3.connect(path) as conn:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'kombu_message'").fetchone():
            return 0
        return conn.execute("SELECT count(*) FROM kombu_message").fetchone()[0]


def processor(run_cli, name: str) -> dict:
    return json.loads(ok(run_cli, "ls", "processor", "-n", name, "--json"))


# --- 1. broker and backend errors name the URI and the setting, and send nothing ---------------

@pytest.mark.parametrize("flag,uri,shown,verdict", [
    ("--broker", "redis://u:secret@localhost:1/0", "redis://u:***@localhost:1/0", "is unavailable"),
    ("--broker", "bogus://x", "bogus://x", "cannot be used"),
    ("--backend", "redis://:secret@localhost:1/1", "redis://:***@localhost:1/1", "is unavailable"),
    ("--backend", "bogus://x", "bogus://x", "cannot be used"),
])
def test_unusable_broker_or_backend_is_named_and_nothing_is_sent(flow, home, run_cli, flag, uri, shown, verdict):
    which = flag.lstrip("-")
    line = error(run_cli, 1, flag, uri, "task", "run", "-s", "b", "-d", "x", "--timeout", "2")
    assert line.startswith(f"Error: {which} {shown} {verdict}: "), line
    assert f"--{which}, PYFI_{which.upper()} or [{which}] uri in the ini file" in line
    assert "secret" not in line and "database" not in line
    assert queued(home) == 0


def test_the_client_checks_the_backend_before_sending(flow, home):
    from pyfi.client.context import Context
    from pyfi.errors import BackendUnavailable

    with pytest.raises(BackendUnavailable, match=r"^backend redis://localhost:1/1 is unavailable"):
        _ = Context(backend="redis://localhost:1/1").app
    assert queued(home) == 0


# --- 2. and 12. timeouts must be positive ---------------------------------------------------------

@pytest.mark.parametrize("command", [("task", "run", "-s", "b", "-d", "x"), ("listen", "-n", "q1.p1", "-c", "task")])
@pytest.mark.parametrize("timeout", ["0", "-1"])
def test_a_timeout_of_zero_or_less_is_a_usage_error(flow, home, run_cli, command, timeout):
    line = error(run_cli, 2, *command, "--timeout", timeout)
    assert "Invalid value for '--timeout'" in line and "x>0" in line
    assert queued(home) == 0


# --- 3. a timeout says what the call's row knows --------------------------------------------------

def record_as_running(monkeypatch, db_url: str) -> list[str]:
    """Make every call `task run` sends look received and started, as a worker's recorder would write it."""
    from pyfi.core import tasks
    from pyfi.db.engine import session_scope
    from pyfi.db.models import Call
    from pyfi.enums import CallState

    sent_ids: list[str] = []
    real_send = tasks.send

    def send(*args, **kwargs):
        sent = real_send(*args, **kwargs)
        with session_scope(db_url) as session:
            for call in sent:
                session.add(Call(id=call.id, name=call.route.socket_name, socket_id=call.route.socket_id,
                                 state=CallState.RUNNING))
                sent_ids.append(call.id)
        return sent

    monkeypatch.setattr(tasks, "send", send)
    return sent_ids


def test_a_timeout_on_a_running_call_says_it_is_running(flow, run_cli, monkeypatch):
    sent_ids = record_as_running(monkeypatch, flow)
    line = error(run_cli, 1, "task", "run", "-s", "slow", "-d", "3", "--timeout", "0.2")
    (call_id,) = sent_ids
    assert f"call {call_id} to slow did not finish within 0.2 s" in line
    assert (f"(it is still running; to stop it: pyfi task cancel --id {call_id}; see `pyfi ls call --id {call_id}`, "
            "or raise --timeout)") in line


def test_a_timeout_with_no_agent_says_the_call_stays_queued_and_how_to_cancel_it(flow, run_cli):
    line = error(run_cli, 1, "task", "run", "-s", "slow", "-d", "3", "--timeout", "0.2")
    call_id = line.split("call ", 1)[1].split(" ", 1)[0]
    assert "it is still queued and will run when a worker takes it" in line
    assert "is ready: no worker runs it yet" in line or "is lost" in line, line  # what `ls processors` shows
    assert f"to stop it: pyfi task cancel --id {call_id}" in line
    shown = json.loads(ok(run_cli, "ls", "call", "--id", call_id[:8], "--json"))
    assert shown["id"] == call_id and shown["state"] == "pending" and shown["sender"] == "admin"
    ok(run_cli, "proc", "pause", "-n", "p1")
    line = error(run_cli, 1, "task", "run", "-s", "slow", "-d", "3", "--timeout", "0.2")
    assert "processor p1 is paused (pyfi proc resume -n p1)" in line, line


def test_the_client_timeout_says_the_call_is_running(flow):
    from pyfi.client.calls import Call as ClientCall
    from pyfi.client.context import Context
    from pyfi.db.engine import session_scope
    from pyfi.db.models import Call
    from pyfi.enums import CallState
    from pyfi.errors import CallTimeout

    call_id = str(uuid.uuid4())
    with session_scope(flow) as session:
        session.add(Call(id=call_id, name="slow", state=CallState.RECEIVED))
    context = Context()
    handle = ClientCall(context, context.app.AsyncResult(call_id), [call_id], "call to slow")
    with pytest.raises(CallTimeout, match="was received by a worker and has not started yet") as caught:
        handle.get(timeout=0.2)
    assert f"`pyfi ls call --id {call_id}`, or pass a longer timeout" in str(caught.value)


def test_client_calls_are_recorded_as_pending_and_a_timeout_says_they_stay_queued(flow, run_cli):
    from pyfi.client import Context, Socket
    from pyfi.errors import CallTimeout

    context = Context()
    call = Socket("slow", context=context).delay(3)
    with pytest.raises(CallTimeout, match="is still queued and will run when a worker takes it") as caught:
        call.get(timeout=0.2)
    assert f"to stop it: pyfi task cancel --id {call.id}" in str(caught.value)
    later = Socket("b", context=context).delay("x")
    context.close()  # writes what it noted
    rows = json.loads(ok(run_cli, "ls", "calls", "--state", "pending", "--json"))["rows"]
    assert {call.id, later.id} <= {row["id"] for row in rows}


# --- 4. stdin: empty or not text -----------------------------------------------------------------

@pytest.mark.parametrize("stdin", ["", "\n"])
def test_empty_stdin_is_refused_and_nothing_is_sent(flow, home, run_cli, stdin):
    line = error(run_cli, 2, "task", "run", "-s", "b", input=stdin)
    assert "no input on stdin and no -d/--data" in line
    assert "-d '\"\"' to send an empty string" in line
    assert queued(home) == 0


def test_binary_stdin_is_refused(flow, home, run_cli):
    line = error(run_cli, 2, "task", "run", "-s", "b", input=b"\x00\xff bin")
    assert "stdin is not UTF-8 text (byte 0xff at offset 1)" in line
    assert queued(home) == 0


def test_an_empty_string_is_sent_when_asked_for(flow, home, run_cli):
    ok(run_cli, "task", "run", "-s", "b", "-d", '""', "--no-wait")
    assert queued(home) == 1


# --- 5. -d text that opens like JSON must be JSON --------------------------------------------------

def test_broken_json_is_a_usage_error_naming_the_position(flow, home, run_cli):
    line = error(run_cli, 2, "task", "run", "-s", "b", "-d", "{bad json", "--no-wait")
    assert "-d/--data starts like JSON but is not: Expecting property name enclosed in double quotes at column 2" in line
    assert "send it as a string: -d '\"{bad json\"'" in line
    assert "line 2 column 1" in error(run_cli, 2, "task", "run", "-s", "b", "-d", "[1,\n", "--no-wait")
    assert queued(home) == 0
    for text in ("hello world", '"{bad json"', "it's [x]", '{"a": [1]}'):
        ok(run_cli, "task", "run", "-s", "b", "-d", text, "--no-wait")
    assert queued(home) == 4


# --- 6. a closed stdout ends any command quietly ----------------------------------------------------

def pyfi_command() -> list[str]:
    beside = Path(sys.executable).parent / "pyfi"
    return [str(beside)] if beside.exists() else [sys.executable, "-m", "pyfi.cli"]


def test_a_closed_stdout_ends_the_command_quietly(flow, run_cli):
    from pyfi.db.engine import session_scope
    from pyfi.db.models import Call

    call_id = str(uuid.uuid4())
    with session_scope(flow) as session:
        session.add(Call(id=call_id, name="b"))
    procs = []
    for args in (["ls", "queues"], ["ls", "call", "--id", call_id]):
        proc = subprocess.Popen(pyfi_command() + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        proc.stdout.close()  # the reader is gone before the first write (the process takes a second to start)
        procs.append(proc)
    for proc in procs:
        stderr = proc.stderr.read().decode()
        assert proc.wait(timeout=60) == 141, stderr
        assert stderr == ""


# --- 7. proc: one processor, selected once -------------------------------------------------------

def test_conflicting_proc_selectors_are_usage_errors(flow, run_cli):
    ok(run_cli, "add", "processor", "-n", "p2", "-m", "pyfi_qa_absent_module", "-g", GIT)
    other = processor(run_cli, "p2")["id"]
    before = {name: processor(run_cli, name)["requested_status"] for name in ("p1", "p2")}
    line = error(run_cli, 2, "proc", "-n", "p1", "--id", other, "stop")
    assert "two processor selectors: -n 'p1' and --id" in line and "not both" in line
    line = error(run_cli, 2, "proc", "-n", "p1", "pause", "-n", "p2")
    assert "two processors named: 'p1' (proc -n) and 'p2' (pause -n)" in line
    assert {name: processor(run_cli, name)["requested_status"] for name in ("p1", "p2")} == before
    ok(run_cli, "proc", "-n", "p1", "pause", "-n", "p1")
    assert processor(run_cli, "p1")["requested_status"] == "paused"


# --- 8. agent ports -------------------------------------------------------------------------------

@pytest.mark.parametrize("port", ["99999", "-1", "0"])
def test_agent_port_out_of_range_is_a_usage_error(flow, home, run_cli, port):
    line = error(run_cli, 2, "agent", "start", "-p", port)
    assert "Invalid value for '-p' / '--port'" in line and "1<=x<=65535" in line
    assert not (home / "agents").exists()


def test_agent_port_in_use_is_one_line_and_changes_nothing(flow, home, run_cli):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = error(run_cli, 1, "agent", "start", "-p", str(port), "-n", "qa-node")
    assert line == f"Error: port {port} is in use (choose another -p/--port)"
    assert not (home / "agents").exists()
    assert json.loads(ok(run_cli, "ls", "agents", "--json"))["total"] == 0


# --- 9. node names are one safe directory name ---------------------------------------------------

@pytest.mark.parametrize("name", ["../../escape", "a b/c", ".hidden", "x" * 101, ""])
def test_bad_node_names_are_usage_errors_and_make_no_directory(flow, home, run_cli, name):
    line = error(run_cli, 2, "agent", "start", "-n", name)
    assert "is not a node name" in line
    assert not (home / "agents").exists()
    assert not (home.parent / "escape").exists()  # where PYFI_HOME/agents/../../escape would be
    assert "is not a node name" in error(run_cli, 2, "worker", "start", "-n", "p1", "--node", name)


def test_host_names_are_valid_node_names():
    from pyfi.core.names import NODE_NAME

    for name in (socket.gethostname(), "node-1.example.com", "worker_7", "x" * 100):
        assert NODE_NAME.fullmatch(name), name


# --- 10. commits and requested statuses are checked when given ------------------------------------

@pytest.mark.parametrize("commit", ["zzzzzz", "abc", "a" * 65, "12 34"])
def test_add_and_update_refuse_a_malformed_commit(flow, run_cli, commit):
    line = error(run_cli, 2, "add", "processor", "-n", "p9", "-m", "mod", "-g", GIT, "-c", commit)
    assert "Invalid value for '-c' / '--commit'" in line and "4 to 64 hexadecimal digits" in line
    assert "p9" not in {row["name"] for row in json.loads(ok(run_cli, "ls", "processors", "--json"))["rows"]}
    error(run_cli, 2, "update", "processor", "-n", "p1", "-c", commit)
    assert processor(run_cli, "p1")["commit"] is None


def test_well_formed_commits_pass(flow, run_cli):
    ok(run_cli, "add", "processor", "-n", "p9", "-m", "mod", "-g", GIT, "-c", "DEADbeef")
    ok(run_cli, "update", "processor", "-n", "p1", "-c", "0" * 40)
    assert processor(run_cli, "p1")["commit"] == "0" * 40
    ok(run_cli, "update", "processor", "-n", "p1", "-c", "")


def test_requested_status_help_lists_only_the_requestable_ones(flow, run_cli):
    from pyfi.core.kinds import REQUESTABLE

    for command in ("add", "update"):
        help_text = " ".join(ok(run_cli, command, "processor", "--help").split())
        choices = re.search(r"-rs, --requested_status \[([a-z|]+)\]", help_text)
        assert choices and choices[1].split("|") == [s.value for s in REQUESTABLE], help_text
    line = error(run_cli, 2, "update", "processor", "-n", "p1", "-rs", "starting")
    assert "cannot be requested to be 'starting'" in line
    line = error(run_cli, 2, "update", "processor", "-n", "p1", "-rs", "bogus")
    assert line.endswith("unknown requested status 'bogus' (choose one of ready, running, paused, stopped, removed)")
    assert processor(run_cli, "p1")["requested_status"] == "ready"


# --- 11. a worker started by hand without --path ---------------------------------------------------

def test_worker_without_path_suggests_path(flow, run_cli):
    line = error(run_cli, 1, "worker", "start", "-n", "p1")
    assert "cannot import module 'pyfi_qa_absent_module'" in line
    assert "started without --path: give --path CHECKOUT" in line


# --- 12. a listen adaptor in the current directory -------------------------------------------------

def test_listen_adaptor_is_found_in_the_current_directory(flow, run_cli, tmp_path, monkeypatch):
    module = f"qa_sink_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text("class Sink:\n    def put(self, message):\n        print(message)\n")
    monkeypatch.chdir(tmp_path)
    # as the `pyfi` console script runs: neither the current directory nor '' on sys.path
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", os.getcwd(), str(tmp_path))])
    result = run_cli("listen", "-n", "q1.p1", "-c", "task", "-a", f"{module}.Sink", "--timeout", "0.2")
    assert result.exit_code == 0, result.output
    assert "Listening to q1.p1" in result.output


def test_listen_refuses_a_channel_nobody_publishes_on(flow, run_cli):
    line = error(run_cli, 2, "listen", "-n", "q1.p1", "-c", "tsak", "--timeout", "0.2")
    assert line == "Error: no processor publishes on channel 'tsak' (use one of task, log, or a glob such as '*')"
    assert "Listening to q1.p1" in ok(run_cli, "listen", "-n", "q1.p1", "-c", "*", "--timeout", "0.2")


# --- 13. a call with no record yet -----------------------------------------------------------------

def test_a_queued_call_is_listed_as_pending_and_an_unknown_id_says_so(flow, home, run_cli):
    call_id = ok(run_cli, "task", "run", "-s", "b", "-d", "x", "--no-wait").strip()
    rows = json.loads(ok(run_cli, "ls", "calls", "--state", "pending", "--json"))["rows"]
    assert [row["id"] for row in rows] == [call_id] and "last_updated" not in rows[0]
    assert "pending" in ok(run_cli, "ls", "call", "--id", call_id[:6])
    line = error(run_cli, 2, "ls", "call", "--id", "0000dead")
    assert "no call with id '0000dead' is recorded" in line and "see `pyfi ls calls`" in line
    assert "no call with id 'abc' is recorded" in error(run_cli, 2, "ls", "call", "--id", "abc")  # too short a prefix


def test_listen_warns_when_the_room_matches_no_processor(flow, run_cli):
    result = run_cli("listen", "-n", "p1", "-c", "task", "--timeout", "0.2")  # the processor's name without its queue
    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == ("Warning: no processor's room matches 'p1' yet; a room is <queue>.<processor>, "
                                     "e.g. 'q1.p1'. Listening anyway.")
    assert "Listening to p1" in result.stdout
    for room in ("q1.p1", "q1.*", "*"):
        matched = run_cli("listen", "-n", room, "-c", "task", "--timeout", "0.2")
        assert matched.exit_code == 0 and not matched.stderr, (room, matched.output)
