"""The runtime end to end: agents, git-deployed processors, workers, calls, events, listen.

Real agents and workers in subprocesses, code from a real git repository,
on the embedded default (SQLite everything) and on PostgreSQL + Redis.
"""
from __future__ import annotations

import json
import os
import signal
import socket as net_socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from network import PYFI, Network, build, child_pids, free_port, health, make_repo, stack_env, wait_for
from sqlalchemy import func, select

from pyfi.db.engine import session_scope
from pyfi.db.models import Call, Event, Processor, Worker
from pyfi.worker.processes import spare_processes, worker_processes

pytestmark = pytest.mark.slow
#: seconds: proc commands take effect in 0.3-2 s (bench/reaction.py measures it); a bound this far above cannot
#: fail on a loaded machine, and a command that waited for a cold worker boot or a slow poll still would
REACTION = 10.0


def status(net: Network, processor: str) -> str:
    with session_scope(net.db_url) as session:
        return str(session.scalar(select(Processor.status).where(Processor.name == processor)))


def seconds_until(net: Network, processor: str, wanted: str, timeout: float = 30, since: float | None = None) -> float:
    """Seconds from ``since`` (default now) until the processor shows ``wanted``."""
    start = time.monotonic() if since is None else since
    wait_for(lambda: status(net, processor) == wanted, timeout, f"{processor} to be {wanted}", interval=0.05)
    return time.monotonic() - start


def worker_pids(net: Network, processor: str) -> list[int]:
    with session_scope(net.db_url) as session:
        query = select(Worker.pid).join(Processor).where(Processor.name == processor)
        return [pid for pid in session.scalars(query) if pid]


def live_workers(processor: str, home: Path) -> list[int]:
    """Worker processes for ``processor`` of this network, found in /proc (not the database)."""
    return worker_processes(processor, home)


def ready_spare(net: Network, processor: str) -> int:
    """The pid of the booted spare worker the agent keeps for ``processor``."""
    home = Path(net.env["PYFI_HOME"])
    [pid] = wait_for(lambda: spare_processes(processor, home, ready=True), 30, f"a ready spare for {processor}")
    return pid


def pid_gone(pid: int) -> bool:
    return not Path(f"/proc/{pid}").exists() or Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"


#: sends one call to the socket argv[1], with id argv[2], that expired a minute ago
SEND_EXPIRED = """
import datetime as dt, sys
from pyfi.client import Context
from pyfi.client.calls import plan_routes, signature
context = Context()
[route] = plan_routes(context, [sys.argv[1]])[sys.argv[1]]
call = signature(context.app, route, ["late"], {}, sys.argv[2], sys.argv[2])
call.apply_async(expires=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1))
"""
EXPIRED_ID = "expired-0000-4000-8000-000000000000"


def test_call_is_recorded_published_and_listened(net: Network) -> None:
    names = build(net, {"echo": "echo", "boom": "boom"})
    room = f"{names['queue']}.p"
    listener = subprocess.Popen(PYFI + ["listen", "-n", room, "-c", "task", "--format", "json", "--timeout", "60"],
                                env=net.env, stdout=subprocess.PIPE, text=True)
    try:
        net.start_agent("node1")
        seconds_until(net, "p", "running", 60)
        result = net.cli("task", "run", "-s", names["echo"], "-d", '{"a": [1, 2]}')
        assert json.loads(result.stdout) == {"a": [1, 2]}
        failed = net.cli("task", "run", "-s", names["boom"], "-d", "x", check=False)
        assert failed.returncode == 1 and "ValueError: boom x" in failed.stderr and "Traceback" not in failed.stderr
        subprocess.run([sys.executable, "-c", SEND_EXPIRED, names["echo"], EXPIRED_ID], env=net.env, check=True)
        states = []
        deadline = time.monotonic() + 20
        while len(states) < 8 and time.monotonic() < deadline:
            state = json.loads(listener.stdout.readline())["state"]
            if state != "pending":  # (a queued call shows as pending only if a poll meets it before a worker does)
                states.append(state)
    finally:
        listener.terminate()
        listener.wait(10)
    assert states == ["received", "running", "postrun", "received", "running", "failure", "received", "revoked"]
    with session_scope(net.db_url) as session:
        wait_for(lambda: session.scalar(select(func.count()).select_from(Event)) >= 8, 10, what="events recorded")
        calls = {c.name: c for c in session.scalars(select(Call).where(Call.id != EXPIRED_ID))}
        assert str(calls["sample.echo"].state) == "finished" and calls["sample.echo"].finished is not None
        assert str(calls["sample.boom"].state) == "failed" and "boom x" in calls["sample.boom"].error
        expired = session.get(Call, EXPIRED_ID)  # never reached a pool process: its parent recorded it
        assert str(expired.state) == "revoked" and {str(e.name) for e in expired.events} == {"received", "revoked"}
        call_id = calls["sample.echo"].id
    shown = net.cli("ls", "call", "--id", call_id).stdout
    assert "Provenance" in shown and "Events" in shown
    assert shown.index("received") < shown.index("prerun") < shown.index("postrun")


def test_proc_commands_take_effect_promptly(net: Network) -> None:
    names = build(net, {"echo": "echo"})
    net.start_agent("node1")
    seconds_until(net, "p", "running", 60)
    timings = {}

    def proc(action: str, wanted: str, timeout: float = 30) -> float:
        """Time from the request being committed (the CLI has returned) to the status; returns when it was seen."""
        net.cli("proc", "-n", "p", action)
        timings[action] = seconds_until(net, "p", wanted, timeout)
        return time.monotonic()

    first = worker_pids(net, "p")
    proc("pause", "paused")
    pending = net.cli("task", "run", "-s", names["echo"], "-d", "1", "--no-wait").stdout.strip()
    proc("resume", "running")
    assert worker_pids(net, "p") == first, "pause/resume must not restart the worker"
    with session_scope(net.db_url) as session:
        wait_for(lambda: str(session.get(Call, pending, populate_existing=True).state) == "finished"
                 if session.get(Call, pending, populate_existing=True) else False, 20, what="call queued while paused")

    home = Path(net.env["PYFI_HOME"])
    stopped_at = proc("stop", "stopped")
    wait_for(lambda: not live_workers("p", home), 20, what="worker process gone", interval=0.02)
    timings["stop -> worker gone"] = timings["stop"] + (time.monotonic() - stopped_at)
    spare = ready_spare(net, "p")  # the agent keeps a booted worker for the next start
    proc("start", "running")
    assert live_workers("p", home) == [spare], "start must take the spare"

    spare = ready_spare(net, "p")
    net.cli("proc", "-n", "p", "restart")
    start = time.monotonic()
    wait_for(lambda: worker_pids(net, "p") == [spare] and status(net, "p") == "running", 30, "the spare to take over",
             interval=0.05)
    timings["restart"] = time.monotonic() - start

    proc("remove", "removed")
    print("reaction times (s):", {k: round(v, 2) for k, v in timings.items()})
    slow = {k: v for k, v in timings.items() if v > REACTION}
    assert not slow, f"took longer than {REACTION} s: {slow}"
    wait_for(lambda: pid_gone(spare) and not spare_processes("p", home), 30, "no worker or spare left after remove")


def test_a_processor_stopped_before_the_agent_started_starts_promptly(net: Network) -> None:
    """Its code is deployed ahead and a spare booted, so its first start does not boot a worker cold."""
    build(net, {"echo": "echo"})
    net.cli("proc", "-n", "p", "stop")
    net.start_agent("node1")
    seconds_until(net, "p", "stopped", 60)
    spare = ready_spare(net, "p")
    assert not live_workers("p", Path(net.env["PYFI_HOME"])), "a stopped processor has no worker, only a spare"
    net.cli("proc", "-n", "p", "start")
    took = seconds_until(net, "p", "running", 30)
    assert worker_pids(net, "p") == [spare], "the first start must take the spare"
    assert took <= REACTION, f"the first start took {took:.2f} s"


def test_a_hanging_git_remote_does_not_hold_up_the_other_processors(net: Network) -> None:
    """git runs in the background: a fetch that waits minutes for its server does not stall the agent."""
    with net_socket.socket() as server:  # accepts connections (the kernel's backlog) and never answers
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        net.cli("add", "processor", "-n", "hung", "-m", "sample", "-g", f"git://127.0.0.1:{server.getsockname()[1]}/x.git")
        build(net, {"echo": "echo"})
        port = free_port()
        net.start_agent("node1", None, "-p", str(port))
        seconds_until(net, "p", "running", 60)
        net.cli("proc", "-n", "p", "pause")
        took = seconds_until(net, "p", "paused", 30)
        assert took <= REACTION, f"pause took {took:.2f} s while another processor's git fetch hangs"
        assert status(net, "hung") == "starting"
        assert "hung" in wait_for(lambda: health(port), 10, "the health endpoint")["deploying"]
        url = f"127.0.0.1:{server.getsockname()[1]}".encode()
        assert processes_with(url), "git should still be waiting for the remote"
        assert net.stop_agent("node1") == 0
        assert not processes_with(url), "the stopped agent left its git fetch running"


def processes_with(text: bytes) -> list[int]:
    """Pids whose command line holds ``text``."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and text in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_pinned_processor_runs_only_on_its_node(net: Network) -> None:
    names = build(net, {"where": "whoami"}, "pinned", "-h", "nodeB")
    net.start_agent("nodeA")
    net.start_agent("nodeB")
    seconds_until(net, "pinned", "running", 60)
    for n in range(4):
        answer = json.loads(net.cli("task", "run", "-s", names["where"], "-d", str(n)).stdout)
        assert answer["node"] == "nodeB"
    rows = net.json("ls", "workers")["rows"]
    assert [r["agent"] for r in rows] == ["nodeB"]
    assert {r["name"] for r in net.json("ls", "agents")["rows"]} == {"nodeA", "nodeB"}


def test_killed_worker_child_call_is_redelivered_once(net: Network, tmp_path: Path) -> None:
    names = build(net, {"slow": "slow"})
    marker = tmp_path / "runs.txt"
    net.start_agent("node1", {"PYFI_TEST_MARKER": str(marker)})
    seconds_until(net, "p", "running", 60)
    call_id = net.cli("task", "run", "-s", names["slow"], "-d", "2", "--no-wait").stdout.strip()
    wait_for(lambda: marker.exists() and marker.read_text().strip(), 20, what="the call to start")
    victim = int(marker.read_text().split()[0])
    assert victim in child_pids(worker_pids(net, "p")[0])
    os.kill(victim, signal.SIGKILL)
    with session_scope(net.db_url) as session:
        def finished() -> bool:
            call = session.get(Call, call_id, populate_existing=True)
            return call is not None and str(call.state) == "finished"

        wait_for(finished, 60, "the redelivered call to finish", interval=0.2)
        postruns = session.scalar(select(func.count()).select_from(Event)
                                  .where(Event.call_id == call_id, Event.name == "postrun"))
    assert postruns == 1
    assert len(marker.read_text().split()) == 2, "the call ran again after its worker child was killed"
    net.stop_agent("node1")  # the worker stops by itself, as after any other call
    assert "did not stop within" not in net.agent_log("node1"), net.agent_log("node1")


def test_agent_restart_adopts_workers_without_duplicates(net: Network) -> None:
    names = build(net, {"echo": "echo"})
    port = free_port()
    net.start_agent("node1", None, "-p", str(port))
    seconds_until(net, "p", "running", 60)
    home = Path(net.env["PYFI_HOME"])
    original = live_workers("p", home)
    assert len(original) == 1
    spare = ready_spare(net, "p")
    shown = wait_for(lambda: health(port), 10, "the health endpoint")  # -p/--port: what the agent supervises
    with pytest.raises(urllib.error.HTTPError, match="404"):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/nothing-here", timeout=5)
    assert shown["agent"] == "node1" and shown["workers"] == {"p": {"pid": original[0], "alive": True}}
    assert shown["spares"] == {"p": {"pid": spare, "ready": True}}
    twin = net.cli("agent", "start", "-n", "node1", "--clean", check=False, separate=True)  # a second agent, same node
    assert twin.returncode == 1 and "already runs on this machine" in twin.stderr, twin.stderr
    assert "running" not in twin.stdout, "the refused agent said it runs"
    assert live_workers("p", home) == original and any((home / "agents" / "node1").iterdir()), "the twin changed nothing"
    net.stop_agent("node1", signal.SIGKILL)  # a crash: the worker outlives its agent
    wait_for(lambda: pid_gone(spare), 20, "the spare to exit with its agent")
    net.start_agent("node1")
    wait_for(lambda: worker_pids(net, "p") == original, 30, what="the agent to adopt its worker")
    for _ in range(5):  # several reconcile rounds later, still exactly one worker
        assert live_workers("p", home) == original
        time.sleep(0.3)
    assert net.cli("task", "run", "-s", names["echo"], "-d", '"ok"').stdout.strip() == "ok"
    ready_spare(net, "p")
    assert net.stop_agent("node1") == 0
    wait_for(lambda: not live_workers("p", home) and not spare_processes("p", home), 20,
             what="SIGTERM to stop the workers and the spare")
    shown = net.processor("p")  # nothing runs it now, and ls says so
    assert shown["status"] == "stopped" and "agent node1 stopped" in shown["error"]


def test_broken_processors_show_their_error_and_others_keep_serving(net: Network) -> None:
    good = build(net, {"echo": "echo"}, "good")
    broken = make_repo(net.tmp / "broken", {"broken.py": "def f(:\n"})
    net.cli("add", "processor", "-n", "norepo", "-m", "sample", "-g", str(net.tmp / "does-not-exist"))
    net.cli("add", "processor", "-n", "noimport", "-m", "broken", "-g", str(broken))
    net.cli("add", "socket", "-n", net.name("f"), "-q", good["queue"], "-pn", "noimport", "-t", "f")
    net.start_agent("node1", None, "--no-spares")
    seconds_until(net, "good", "running", 60)
    seconds_until(net, "norepo", "error", 30)
    seconds_until(net, "noimport", "error", 60)
    assert "not found" in net.processor("norepo")["error"]
    assert "cannot import module 'broken'" in net.processor("noimport")["error"]
    shown = net.cli("ls", "processor", "-n", "noimport").stdout  # the table, not only --json
    assert "Error: cannot import module 'broken'" in shown and "SyntaxError" in shown
    assert "cannot import module 'broken'" in net.cli("ls", "processors").stdout
    assert net.cli("task", "run", "-s", good["echo"], "-d", '"still here"').stdout.strip() == "still here"
    assert not spare_processes("good", Path(net.env["PYFI_HOME"])), "--no-spares keeps no spare"

    # a socket whose function the module lacks (a typo in -t) costs only itself
    net.cli("add", "socket", "-n", net.name("typo"), "-q", good["queue"], "-pn", "good", "-t", "ehco")
    def typo_shown_while_running() -> bool:  # (the worker restarts for the new socket: 'starting' comes first)
        shown = net.processor("good")
        return shown["status"] == "running" and "has no function 'ehco'" in (shown["error"] or "")

    wait_for(typo_shown_while_running, 60, "the typo shown next to running")
    assert net.cli("task", "run", "-s", good["echo"], "-d", '"still"').stdout.strip() == "still"


@pytest.mark.parametrize("db_kind", ["postgres"], indirect=True)  # (liveness is the core's, whatever the stack)
def test_agents_shown_lost_when_heartbeat_is_stale(net: Network) -> None:
    build(net, {"echo": "echo"})
    net.start_agent("node1")
    seconds_until(net, "p", "running", 60)
    assert net.json("ls", "agent", "-n", "node1")["status"] == "running"
    net.stop_agent("node1", signal.SIGKILL)
    wait_for(lambda: net.json("ls", "agent", "-n", "node1")["status"] == "lost", 30, "agent shown lost", interval=0.5)
    shown = net.processor("p")  # the killed agent could not say it no longer runs p
    assert shown["status"] == "lost" and "heartbeat of every agent stopped" in shown["error"], shown
    kill = live_workers("p", Path(net.env["PYFI_HOME"]))
    for pid in kill:
        os.kill(pid, signal.SIGTERM)


@pytest.fixture
def rabbit_net(home: Path, tmp_path: Path, request):
    """PostgreSQL + RabbitMQ broker (Redis result backend and pub/sub)."""
    import socket

    from conftest import require_service

    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=2).close()
    except OSError as exc:
        require_service("RabbitMQ", str(exc))
    request.getfixturevalue("redis_url")
    db_url = request.getfixturevalue("db_url")
    network = Network(stack_env("rabbitmq", home, db_url), tmp_path)
    yield network
    network.close()


@pytest.mark.parametrize("db_kind", ["postgres"])
def test_rabbitmq_broker_runs_calls(db_kind: str, rabbit_net: Network) -> None:
    names = build(rabbit_net, {"upper": "upper"})
    rabbit_net.start_agent("node1")
    seconds_until(rabbit_net, "p", "running", 60)
    assert rabbit_net.cli("task", "run", "-s", names["upper"], "-d", '"rabbit"').stdout.strip() == "RABBIT"
    rabbit_net.cli("proc", "-n", "p", "pause")
    seconds_until(rabbit_net, "p", "paused")
    queued = rabbit_net.cli("task", "run", "-s", names["upper"], "-d", '"later"', "--no-wait").stdout.strip()
    rabbit_net.cli("proc", "-n", "p", "resume")
    with session_scope(rabbit_net.db_url) as session:
        wait_for(lambda: (c := session.get(Call, queued, populate_existing=True)) is not None and str(c.state) == "finished",
                 30, "the call queued while paused", interval=0.2)


def test_output_on_log_channel_stdin_pipes_and_adaptor(net: Network, tmp_path: Path) -> None:
    names = build(net, {"chatty": "chatty", "upper": "upper", "echo": "echo"})
    room = f"{names['queue']}.p"
    sink = tmp_path / "adaptor.py"
    sink.write_text("import json, os\nclass Sink:\n    def put(self, message):\n"
                    "        with open(os.environ['SINK_FILE'], 'a') as fh:\n"
                    "            fh.write(json.dumps(message) + '\\n')\n")
    env = {**net.env, "PYTHONPATH": str(tmp_path), "SINK_FILE": str(tmp_path / "sink.jsonl")}
    log_listener = subprocess.Popen(PYFI + ["listen", "-n", room, "-c", "log", "--format", "json", "--timeout", "60"],
                                    env=net.env, stdout=subprocess.PIPE, text=True)
    adaptor = subprocess.Popen(PYFI + ["listen", "-n", room, "-c", "task", "-a", "adaptor.Sink", "--timeout", "60"],
                               env=env)
    try:
        net.start_agent("node1")
        seconds_until(net, "p", "running", 60)
        assert net.cli("task", "run", "-s", names["chatty"], "-d", '"pyfi"').stdout.strip() == "4"
        lines = [json.loads(log_listener.stdout.readline()) for _ in range(3)]
    finally:
        log_listener.terminate()
    assert [(m["state"], m["message"]) for m in lines] == [
        ("stdout", "hello from pyfi"), ("stderr", "to stderr"), ("log", "WARNING user.code: careful with pyfi")]
    assert all(m["channel"] == "log" and m["room"] == room for m in lines)

    # echo 'shout this' | pyfi task run -s upper | pyfi task run -s echo
    first = subprocess.Popen(PYFI + ["task", "run", "-s", names["upper"]], env=net.env, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    second = subprocess.Popen(PYFI + ["task", "run", "-s", names["echo"]], env=net.env, stdin=first.stdout,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first.stdin.write("shout this\n")
    first.stdin.close()
    first.stdout.close()  # the second process owns the pipe now
    out, err = second.communicate(timeout=60)
    assert first.wait(timeout=60) == 0 and second.returncode == 0, err
    assert out.strip() == "SHOUT THIS", err
    sink_file = tmp_path / "sink.jsonl"
    try:
        wait_for(lambda: sink_file.exists() and sink_file.read_text().count("postrun") >= 3, 20, what="adaptor put()")
    finally:
        adaptor.terminate()
        adaptor.wait(10)
