"""Queue types: direct load-balances over a socket's workers, fanout copies, topic routes by pattern.

The routing is computed from the database by the sender (see
pyfi.messaging.routing), so it behaves the same on every broker.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from network import SAMPLE, Network, make_repo, wait_for
from pyfi.messaging.routing import topic_matches


@pytest.mark.parametrize(("pattern", "key", "expected"), [
    ("orders.*", "orders.eu", True), ("orders.*", "orders.eu.x", False), ("orders.#", "orders", True),
    ("orders.#", "orders.eu.x", True), ("#", "anything.at.all", True), ("orders.eu", "orders.eu", True),
    ("orders.eu", "orders.us", False), ("#.eu", "orders.eu", True), ("*.eu", "eu", False),
])
def test_topic_patterns(pattern: str, key: str, expected: bool) -> None:
    assert topic_matches(pattern, key) is expected


def results(net: Network, socket: str, data: str, *extra: str) -> list:
    out = net.cli("task", "run", "-s", socket, "-d", data, *extra).stdout
    return sorted(out.splitlines())


@pytest.mark.slow
def test_queue_types_route_to_the_right_workers(net: Network) -> None:
    repo = make_repo(net.tmp / "repo", {"sample.py": SAMPLE})
    direct, fan, topic = net.name("direct"), net.name("fan"), net.name("topic")
    net.cli("add", "queue", "-n", direct, "-t", "direct")
    net.cli("add", "queue", "-n", fan, "-t", "fanout")
    net.cli("add", "queue", "-n", topic, "-t", "topic")
    for proc in ("p1", "p2"):
        net.cli("add", "processor", "-n", proc, "-m", "sample", "-g", str(repo))
        net.cli("add", "socket", "-n", f"{proc}-where", "-q", direct, "-pn", proc, "-t", "where_after")
    net.cli("add", "socket", "-n", "p1-echo", "-q", direct, "-pn", "p1", "-t", "echo")
    net.cli("add", "socket", "-n", "p2-upper", "-q", direct, "-pn", "p2", "-t", "upper")
    net.cli("add", "socket", "-n", "fan-echo", "-q", fan, "-pn", "p1", "-t", "echo")
    net.cli("add", "socket", "-n", "fan-upper", "-q", fan, "-pn", "p2", "-t", "upper")
    net.cli("add", "socket", "-n", "orders.*", "-q", topic, "-pn", "p1", "-t", "echo")
    net.cli("add", "socket", "-n", "orders.eu", "-q", topic, "-pn", "p2", "-t", "upper")
    net.start_agent("node1")
    for proc in ("p1", "p2"):
        wait_for(lambda p=proc: net.processor(p)["status"] == "running", 60, f"{proc} running", interval=0.3)

    # direct, two tasks on one queue: each call reaches only a worker that can run it
    for _ in range(3):
        assert results(net, "p1-echo", '"a"') == ["a"]
        assert results(net, "p2-upper", '"a"') == ["A"]

    # direct, one function in two processors: a call runs only in the processor of the socket it names
    # (their code and owners may differ), load-balanced over that processor's workers on every node
    net.start_agent("node2", None, "--no-spares")  # (spares booting on both nodes only slow the test down)
    wait_for(lambda: len(_workers(net)) == 4, 60, "p1 and p2 running on both nodes", interval=0.3)
    ids = send_burst(net, "p1-where", 1.0, 8)  # all queued at once: an idle worker must take the next
    served = wait_for(lambda: _all_results(net, ids), 60, "eight direct calls", interval=0.3)
    workers = _workers(net)
    assert {workers.get(s["worker"]) for s in served} == {"p1"}, f"a call to p1's socket ran elsewhere: {served}"
    assert {s["node"] for s in served} == {"node1", "node2"}, f"direct calls were not load-balanced: {served}"

    # fanout: a copy to every socket on the queue
    assert results(net, "fan-echo", '"hi"') == ["HI", "hi"]

    # topic: sockets whose name (a pattern) matches the routing key
    assert results(net, "orders.eu", '"x"', "--key", "orders.eu") == ["X", "x"]
    assert results(net, "orders.eu", '"x"', "--key", "orders.us") == ["x"]
    logs = "".join(p.read_text() for p in Path(net.env["PYFI_HOME"]).glob("agents/*/run/*/worker.log"))
    assert "unregistered task" not in logs.lower()


def send_burst(net: Network, socket: str, data: object, count: int) -> list[str]:
    from pyfi.config import resolve
    from pyfi.core import tasks
    from pyfi.core.access import Actor
    from pyfi.core.keys import user_signer
    from pyfi.db.engine import session_scope
    from pyfi.messaging.app import make_app

    settings = resolve(env=net.env)
    with session_scope(net.db_url) as session:
        routes = tasks.plan(session, Actor(settings.user), socket)
        signer = user_signer(session, Actor(settings.user))
    app = make_app(settings, signer=signer)
    return [call.id for _ in range(count) for call in tasks.send(app, routes, [data])]


def _all_results(net: Network, ids: list[str]) -> list | None:
    from sqlalchemy import select

    from pyfi.db.engine import session_scope
    from pyfi.db.models import Call

    with session_scope(net.db_url) as session:
        done = session.scalars(select(Call).where(Call.id.in_(ids), Call.state == "finished")).all()
    if len(done) < len(ids):
        return None
    return [_result(net, call_id) for call_id in ids]


def _workers(net: Network) -> dict[int, str]:
    """The running workers' pids, and their processors' names."""
    rows = net.json("ls", "workers", "--rows", "100")["rows"]
    return {row["pid"]: row["processor"] for row in rows if row["status"] == "running"}


def _result(net: Network, call_id: str) -> Any:
    from pyfi.config import resolve
    from pyfi.messaging.app import make_app

    app = make_app(resolve(env=net.env))
    return app.AsyncResult(call_id).get(timeout=10)

