"""A network of two agents placed by a scheduler, and timed sockets, with real agents, workers and schedulers.

On the embedded default and on PostgreSQL + Redis. tests/test_two_hosts.py
runs the same network as two hosts (network namespaces).
"""
from __future__ import annotations

import datetime as dt
import json
import os
import signal
from pathlib import Path

import pytest

from network import Network, build, deployments, free_port, health, serving, wait_for
from sqlalchemy import select

from pyfi.db.engine import session_scope
from pyfi.db.models import Call, Socket
from pyfi.scheduler.beat import latest_tick, tick_call_id


def started_scheduler(net: Network, *nodes: str) -> None:
    for node in nodes:
        net.start_agent(node)
    wait_for(lambda: {r["name"] for r in net.json("ls", "nodes")["rows"]} >= set(nodes), 60, "the nodes to register")
    net.cli("add", "scheduler", "-n", "s", "-s", "balanced", "-i", "2")
    for node in nodes:
        net.cli("scheduler", "-n", "s", "add", "--node", node)
    net.start_scheduler("s")


@pytest.mark.parametrize("db_kind", ["postgres"], indirect=True)  # (several nodes share a server: PostgreSQL)
def test_balanced_scheduler_runs_one_worker_per_node_and_moves_a_killed_agent_s_share(net: Network):
    names = build(net, {"where": "whoami"}, "p", "-w", "2", "-b")
    started_scheduler(net, "nodeA", "nodeB")
    wait_for(lambda: deployments(net) == {"nodeA": 1, "nodeB": 1}, 60, "one deployment per node")
    wait_for(lambda: serving(net) == {"nodeA": 1, "nodeB": 1}, 90, "one worker process per node")
    served = {json.loads(net.cli("task", "run", "-s", names["where"], "-d", str(n)).stdout)["node"] for n in range(8)}
    assert served <= {"nodeA", "nodeB"}
    assert "p on nodeA: 0 -> 1 worker processes (placed)" in net.scheduler_log("s")

    worker_a = serving(net, "pid")["nodeA"]
    os.kill(net.agents.pop("nodeB").pid, signal.SIGKILL)  # its worker lives on, unwatched
    wait_for(lambda: deployments(net) == {"nodeA": 2}, 60, "nodeB's share to move to nodeA")
    wait_for(lambda: serving(net).get("nodeA") == 2, 60, "nodeA to serve with two worker processes")
    assert serving(net, "pid")["nodeA"] == worker_a, "nodeA's worker was restarted, not resized"
    assert json.loads(net.cli("task", "run", "-s", names["where"], "-d", "after").stdout)["x"] == "after"
    moves = net.json("ls", "placements", "-r", "100")["rows"]
    assert {(m["node"], m["before"], m["after"], m["reason"]) for m in moves} >= {
        ("nodeB", 1, 0, "its agent is lost"), ("nodeA", 1, 2, "rebalanced")}


@pytest.mark.parametrize("db_kind", ["postgres"], indirect=True)  # (several nodes share a server: PostgreSQL)
def test_a_standby_scheduler_takes_over_when_the_placing_one_dies(net: Network):
    build(net, {"where": "whoami"}, "p", "-w", "2")
    started_scheduler(net, "nodeA")
    wait_for(lambda: "placing (holds the lease)" in net.scheduler_log("s"), 30, "the first scheduler to place")
    standby = net.start_scheduler("s", "standby")
    wait_for(lambda: "standing by" in net.scheduler_log("standby"), 30, "the second to stand by")
    net.schedulers[0].kill()
    wait_for(lambda: "placing (holds the lease)" in net.scheduler_log("standby"), 30, "the standby to take over")
    net.cli("scheduler", "-n", "s", "remove", "--node", "nodeA")
    wait_for(lambda: deployments(net) == {}, 30, "the new holder to place")
    standby.terminate()
    assert standby.wait(30) == 0 and "Scheduler s stopped" in net.scheduler_log("standby")


@pytest.mark.parametrize("db_kind", ["postgres"], indirect=True)  # (several nodes share a server: PostgreSQL)
def test_a_timed_socket_fires_once_per_tick_and_goes_on_when_the_beat_s_holder_dies(net: Network, tmp_path: Path):
    marker = tmp_path / "runs.txt"
    names = build(net, {"tick": "tick"}, "p", "-b")
    net.cli("update", "socket", "-n", names["tick"], "-i", "2")
    ports = {node: free_port() for node in ("nodeA", "nodeB")}
    for node, port in ports.items():
        net.start_agent(node, {"PYFI_TEST_MARKER": str(marker)}, "-p", str(port))
    wait_for(lambda: len(serving(net)) == 2, 90, "both agents to run the processor")
    with session_scope(net.db_url) as session:
        socket = session.scalar(select(Socket).where(Socket.name == names["tick"]))
        socket_id, interval = socket.id, socket.interval

    def calls() -> set[str]:
        with session_scope(net.db_url) as session:
            return set(session.scalars(select(Call.id).where(Call.socket_id == socket_id, Call.state == "finished")))

    first = wait_for(calls, 30, "a first timed call")
    with session_scope(net.db_url) as session:
        first_tick = latest_tick(Socket(interval=interval), session.get(Call, sorted(first)[0]).started)
    wait_for(lambda: len(calls()) >= 3, 30, "three ticks")
    holder = wait_for(lambda: [node for node, port in ports.items() if (health(port) or {}).get("beat")], 10,
                      "the agent that holds the beat")
    assert len(holder) == 1
    os.kill(net.agents.pop(holder[0]).pid, signal.SIGKILL)  # the other agent takes the beat over
    wait_for(lambda: len(calls()) >= 8, 90, "more ticks, fired by the other agent")
    net.cli("update", "processor", "-n", "p", "--no-beat")  # no more ticks: what ran can be counted
    ticks = [first_tick + dt.timedelta(seconds=interval * n) for n in range(1, 8)]
    missed = {tick_call_id(socket_id, tick) for tick in ticks} - calls()
    assert len(missed) <= 1, f"{len(missed)} of {len(ticks)} ticks were missed"

    def runs() -> int:
        return len(marker.read_text().splitlines())

    wait_for(lambda: runs() == len(calls()), 20, "as many runs as calls (a tick that ran twice never gets there)")
