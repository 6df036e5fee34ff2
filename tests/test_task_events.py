"""``agent start --task-events``: Celery's own monitors (``celery events``, Flower) see pyfi's calls by socket name.

A real agent on a Redis broker runs the workers; a real Celery event
receiver (``app.events.Receiver``, what ``celery events`` and Flower use)
watches the broker, and Celery's event ``State`` (what they show) names
each call by its socket.
"""
from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

from network import PYFI, Network, build, stack_env, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def net(tmp_path_factory) -> Iterator[tuple[Network, dict[str, str]]]:
    from conftest import REDIS_URL, require_service
    from pyfi.core.access import bootstrap_admin
    from pyfi.db import migrate
    from pyfi.db.engine import session_scope

    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        require_service("Redis", str(exc))
    tmp = tmp_path_factory.mktemp("task-events")
    home = tmp / "home"
    network = Network(stack_env("redis", home, f"sqlite:///{home}/pyfi.db"), tmp)
    try:
        migrate.upgrade(network.db_url)
        with session_scope(network.db_url) as session:
            bootstrap_admin(session, "admin")
        names = build(network, {"echo": "echo"})
        network.start_agent("events-node", None, "--task-events")
        network.wait_status("p", "running", timeout=120)
        yield network, names
    finally:
        network.close()


class Watcher:
    """A Celery event receiver on the network's broker, in a thread, keeping every event it sees."""

    def __init__(self, network: Network) -> None:
        from pyfi.config import resolve
        from pyfi.messaging.app import make_app

        self.app = make_app(resolve({}, {k: v for k, v in network.env.items() if k.startswith("PYFI_")}))
        self.events: list[dict[str, Any]] = []
        self.receiver: Any = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with self.app.connection_for_read() as connection:
            self.receiver = self.app.events.Receiver(connection, handlers={"*": self.events.append})
            self.receiver.capture(limit=None, timeout=None, wakeup=False)

    def __enter__(self) -> "Watcher":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.receiver is not None:
            self.receiver.should_stop = True
        self.thread.join(timeout=10)

    def hears(self, call_id: str) -> bool:
        """Whether the events of ``call_id`` arrive within a few seconds (none: the receiver was not listening yet)."""
        try:
            wait_for(lambda: self.of(call_id), timeout=5, what="its events", interval=0.1)
        except AssertionError:
            return False
        return True

    def of(self, call_id: str) -> list[dict[str, Any]]:
        return [event for event in list(self.events) if event.get("uuid") == call_id]


def call(network: Network, socket: str, data: str) -> str:
    return network.cli("task", "run", "-s", socket, "-d", data, "--no-wait").stdout.strip()


def test_celery_events_name_each_call_by_its_socket(net):
    network, names = net
    socket = names["echo"]
    with Watcher(network) as watcher:
        wait_for(lambda: watcher.hears(call(network, socket, '"warm-up"')), timeout=60, interval=0.1,
                 what="task events of a warm-up call")  # the receiver listens once a call's events arrive
        call_id = call(network, socket, '"watched"')
        done = wait_for(lambda: [e for e in watcher.of(call_id) if e["type"] == "task-succeeded"], timeout=60,
                        what="the call's task-succeeded event")
        mine = watcher.of(call_id)
    kinds = [event["type"] for event in mine]
    assert {"task-received", "task-started", "task-succeeded"} <= set(kinds), kinds
    received = next(event for event in mine if event["type"] == "task-received")
    assert received["name"] == socket and received["hostname"].startswith("p.")
    assert "watched" in done[0]["result"]

    state = watcher.app.events.State()  # what `celery events` and Flower build from the events
    for event in mine:
        state.event(event)
    task = state.tasks[call_id]
    assert (task.name, task.state) == (socket, "SUCCESS")


def test_workers_get_the_setting_and_a_bad_value_is_refused(net):
    network, _names = net
    runs = Path(network.env["PYFI_HOME"]).glob("agents/events-node/run/*/meta.json")
    pids = [json.loads(path.read_text())["pid"] for path in runs]
    environs = [Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") for pid in pids if Path(f"/proc/{pid}").exists()]
    assert environs and all(b"PYFI_TASK_EVENTS=1" in env for env in environs)

    refused = subprocess.run(PYFI + ["ls", "queues"], env={**network.env, "PYFI_TASK_EVENTS": "maybe"},
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2  # a configuration error
    assert "invalid task_events setting 'maybe': expected on or off" in refused.stderr


def test_the_embedded_broker_is_named_as_carrying_no_events(tmp_path):
    """Asked for over the embedded default, the agent says why celery events will see nothing, and runs."""
    from pyfi.core.access import bootstrap_admin
    from pyfi.db import migrate
    from pyfi.db.engine import session_scope

    home = tmp_path / "home"
    network = Network(stack_env("embedded", home, f"sqlite:///{home}/pyfi.db"), tmp_path)
    try:
        migrate.upgrade(network.db_url)
        with session_scope(network.db_url) as session:
            bootstrap_admin(session, "admin")
        network.start_agent("embedded-node", None, "--task-events")
        wait_for(lambda: "running" in network.agent_log("embedded-node"), 60, what="the agent running")
    finally:
        network.close()
    assert ("Warning: task events reach no other process over the embedded default's SQLite broker"
            in network.agent_log("embedded-node"))
