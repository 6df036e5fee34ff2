"""A worker started by hand (``pyfi worker start``, no agent) is listed by ``ls workers`` while it runs."""
from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
from pathlib import Path

import pytest
from network import PYFI, Network, build, wait_for

from pyfi.db.engine import session_scope
from pyfi.db.models import Worker
from pyfi.enums import WorkerStatus
from pyfi.worker.presence import Presence
from pyfi.worker.spec import load_spec


def hand_workers(net: Network) -> list[dict]:
    return [w for w in net.json("ls", "workers")["rows"] if w["agent"] == "(by hand)"]


def start_by_hand(net: Network, processor: str, checkout: Path) -> subprocess.Popen:
    log = open(net.tmp / "hand-worker.log", "ab")
    return subprocess.Popen(PYFI + ["worker", "start", "-n", processor, "--path", str(checkout)], env=net.env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def test_a_hand_started_worker_is_listed_while_it_serves_and_unlisted_when_it_stops(net: Network) -> None:
    names = build(net, {"a": "echo"})
    checkout = net.tmp / "repo-p"  # the user's own clone
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=checkout, capture_output=True, text=True).stdout.strip()
    worker = start_by_hand(net, "p", checkout)
    try:
        [row] = wait_for(lambda: hand_workers(net), 60, what="the hand-started worker in ls workers")
        assert (row["pid"], row["status"], row["commit"], row["processor"]) == (worker.pid, "running", head, "p")
        assert net.cli("task", "run", "-s", names["a"], "-d", '"hi"').stdout.strip() == "hi"
        assert "(by hand)" in net.cli("ls", "workers").stdout
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
        assert hand_workers(net) == []
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)


def test_a_killed_hand_worker_shows_lost_and_the_next_one_takes_its_row(net: Network) -> None:
    build(net, {"a": "echo"})
    with session_scope(net.db_url) as session:
        spec = load_spec(session, "p")
        long_ago = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(minutes=5)
        session.add(Worker(name="p.4242@gone", agent_id=None, processor_id=spec.processor_id, pid=4242,
                           status=WorkerStatus.RUNNING, lastupdated=long_ago))  # its worker was SIGKILLed
    [dead] = hand_workers(net)
    assert (dead["name"], dead["status"]) == ("p.4242@gone", "lost")
    presence = Presence(net.db_url, spec, "p.1@here", 2, "admin", None)
    presence.on_ready()
    try:
        assert [(w["name"], w["status"], w["concurrency"]) for w in hand_workers(net)] == [("p.1@here", "running", 2)]
    finally:
        presence.stop()
    assert hand_workers(net) == []


@pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
def test_an_agents_workers_are_not_shown_as_by_hand(net: Network) -> None:
    names = build(net, {"a": "echo"})
    net.start_agent("n1")
    assert net.cli("task", "run", "-s", names["a"], "-d", '"x"', timeout=120).stdout.strip() == "x"
    rows = wait_for(lambda: [(w["agent"], w["status"]) for w in net.json("ls", "workers")["rows"]
                             if w["status"] == "running"], 30, what="the agent's worker shown running")
    assert rows == [("n1", "running")]


def test_a_worker_that_cannot_run_exits_non_zero_with_one_line(net: Network) -> None:
    build(net, {"a": "echo"})
    checkout = net.tmp / "repo-p"
    (net.tmp / "crashing.py").write_text("class Config:\n    worker_state_db = '/nonexistent/state'\n")
    env = {**net.env, "PYTHONPATH": str(net.tmp)}  # its state file cannot be opened: the worker cannot run
    worker = subprocess.run(PYFI + ["worker", "start", "-n", "p", "--path", str(checkout), "--celery-config",
                                    "crashing.Config"], env=env, capture_output=True, text=True, timeout=30)
    assert worker.returncode != 0, worker.stderr[-2000:]
    assert "/nonexistent/state" in worker.stderr and "Traceback" not in worker.stderr, worker.stderr[-2000:]
