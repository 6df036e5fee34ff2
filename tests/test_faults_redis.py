"""Faults on a Redis broker, under load: no call lost when a worker is killed, and a Redis restart ridden out.

Each test runs its own ``redis-server`` (broker, result backend and pub/sub),
so stopping it disturbs no one, and a SQLite database in its PYFI_HOME. A
sender thread sends calls of one socket at about 30 a second through the
Python client while the test injects the fault; then every call must come
back. The function appends its argument to a file at each run, which
counts the runs: sent / returned (a result in the backend) / recorded (a
finished call row) / run twice / lost.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest
import redis
from sqlalchemy import func, select

from network import Network, free_port, make_repo, wait_for
from pyfi.db.engine import session_scope
from pyfi.db.models import Call

pytestmark = pytest.mark.slow

MARKING = '''
import os, time

def mark(x):
    with open(os.environ["PYFI_TEST_MARKER"], "a") as runs:
        runs.write(f"{x}\\n")
    time.sleep(0.03)  # a call is running at most instants a fault strikes
    return x
'''
RATE = 30  # calls a second
SEND_FOR = 15.0  # seconds
BACK_WITHIN = 60.0  # seconds after the last send


@pytest.fixture
def db_kind() -> str:
    return "sqlite"


@dataclass
class OwnRedis:
    """A ``redis-server`` of the test's own; ``restart`` keeps its data, as an ordinary restart does."""

    port: int
    workdir: Path
    process: subprocess.Popen | None = None

    def url(self, number: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{number}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir),
             "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_for(self.answers, 10, f"redis-server on port {self.port}")

    def answers(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        """SHUTDOWN SAVE: what it holds (queued calls, results) is written to its dump and read at the next start."""
        try:
            redis.Redis(port=self.port).shutdown(save=True)
        except redis.ConnectionError:
            pass  # (it closes the connection as it exits)
        self.process.wait(timeout=30)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    if shutil.which("redis-server") is None and os.environ.get("CI") != "true":
        pytest.skip("no redis-server on this machine")
    server = OwnRedis(free_port(), tmp_path / "redis")
    server.workdir.mkdir()
    server.start()
    yield server
    if server.process.poll() is None:
        server.process.terminate()
        server.process.wait(timeout=30)


@pytest.fixture
def faults_net(own_redis: OwnRedis, db_url: str, home: Path, tmp_path: Path) -> Iterator[Network]:
    env = {"PYFI_HOME": str(home), "PYFI_DB": db_url, "PYFI_USER": "admin", "PYFI_BROKER": own_redis.url(0),
           "PYFI_BACKEND": own_redis.url(1), "PYFI_PUBSUB": own_redis.url(2)}
    network = Network(env, tmp_path)
    yield network
    network.close()


def serve_marking(net: Network, marker: Path) -> str:
    """One processor with one socket running ``mark``, served by a running agent; the socket's name."""
    repo = make_repo(net.tmp / "repo", {"faults.py": MARKING})
    net.cli("add", "queue", "-n", "q")
    net.cli("add", "processor", "-n", "p", "-m", "faults", "-g", str(repo))
    net.cli("add", "socket", "-n", "s", "-q", "q", "-pn", "p", "-t", "mark")
    net.start_agent("node1", {"PYFI_TEST_MARKER": str(marker)})
    wait_for(lambda: net.processor("p")["status"] == "running", 90, "p running", interval=0.2)
    return "s"


@dataclass
class Sender:
    """Sends ``mark(i)`` at RATE a second for SEND_FOR seconds from a thread; a send the broker refused is tried again."""

    net: Network
    socket: str
    sent: dict[int, str] = field(default_factory=dict)  # argument -> call id
    refused: int = 0
    last_send: float = 0.0
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        from pyfi.client import Socket
        from pyfi.client.context import Context
        from pyfi.config import resolve

        context = Context(resolve({}, {k: v for k, v in self.net.env.items() if k.startswith("PYFI_")}))
        socket = Socket(self.socket, context=context)
        started = time.monotonic()
        for number in range(int(RATE * SEND_FOR)):
            time.sleep(max(0.0, started + number / RATE - time.monotonic()))
            self.sent[number] = self._send(socket, number)
            self.last_send = time.monotonic()
        context.close()

    def _send(self, socket: Any, number: int) -> str:
        while True:
            try:
                return socket.delay(number).id
            except Exception:  # noqa: BLE001 - the broker is down: the call was not sent, send it again
                self.refused += 1
                time.sleep(0.2)

    def running(self) -> bool:
        return self.thread.is_alive()


def returned(net: Network, ids: list[str]) -> int:
    client = redis.Redis.from_url(net.env["PYFI_BACKEND"])
    values = client.mget([f"celery-task-meta-{call_id}" for call_id in ids]) if ids else []
    return sum(1 for value in values if value and b'"SUCCESS"' in value)


def recorded(net: Network, ids: list[str]) -> int:
    with session_scope(net.db_url) as session:
        return session.scalar(select(func.count()).select_from(Call)
                              .where(Call.id.in_(ids), Call.state == "finished"))


def runs(marker: Path) -> Counter:
    return Counter(int(line) for line in marker.read_text().split()) if marker.exists() else Counter()


def worker_pid(net: Network) -> int | None:
    rows = [row for row in net.json("ls", "workers")["rows"] if row.get("status") == "running"]
    return rows[0]["pid"] if len(rows) == 1 and rows[0].get("pid") else None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def figures(net: Network, sender: Sender, marker: Path) -> dict[str, Any]:
    """The counts, once every sent call returned and was recorded (or BACK_WITHIN seconds after the last send)."""
    ids = list(sender.sent.values())

    def done() -> bool:
        return returned(net, ids) == len(ids) and recorded(net, ids) == len(ids)

    try:
        wait_for(done, BACK_WITHIN - (time.monotonic() - sender.last_send), "every call to return and be recorded",
                 interval=0.5)
    except AssertionError:
        pass  # the counts say what is missing
    back_after, counted = time.monotonic() - sender.last_send, runs(marker)
    found = {"sent": len(ids), "returned": returned(net, ids), "recorded": recorded(net, ids),
             "run twice": sum(1 for n in counted.values() if n > 1), "never run": len(ids) - len(counted),
             "refused sends": sender.refused, "back after last send (s)": round(back_after, 1)}
    print("figures:", found)
    return found


def kill_the_serving_worker(net: Network, sender: Sender, marker: Path) -> bool:
    """Once the running worker has served a second's worth of calls, kill -9 its main process; whether it did."""
    pid = wait_for(lambda: worker_pid(net), 60, "a running worker (the agent restarts a killed one)", interval=0.05)
    ran = len(runs(marker))  # calls are taken, run and acknowledged around the kill
    wait_for(lambda: not sender.running() or len(runs(marker)) >= ran + RATE, 60, "the worker to serve")
    if not sender.running() or not alive(pid):
        return False
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not alive(pid) or worker_pid(net) != pid, 30, "the killed worker to be gone")
    return True


def test_no_call_is_lost_when_the_serving_worker_is_killed_again_and_again(
        faults_net: Network, tmp_path: Path) -> None:
    net, marker = faults_net, tmp_path / "runs.txt"
    sender = Sender(net, serve_marking(net, marker))
    sender.start()
    kills = 0
    while sender.running():
        kills += kill_the_serving_worker(net, sender, marker)
    assert kills >= 4
    found = figures(net, sender, marker)
    print("kill -9 of the serving worker:", kills)
    assert found["returned"] == found["sent"] == found["recorded"], found
    assert found["never run"] == 0, found


def test_a_redis_restart_is_ridden_out_by_the_same_worker(faults_net: Network, own_redis: OwnRedis,
                                                            tmp_path: Path) -> None:
    """Redis is shut down (saving what it holds, as an ordinary restart does) for 5 s and started again.

    The worker reconnects; the calls it was running when Redis went away
    finish and are acknowledged once; those it had taken and dropped with
    its connection go back to their queue when it is connected again.
    """
    net, marker = faults_net, tmp_path / "runs.txt"
    sender = Sender(net, serve_marking(net, marker))
    pid = wait_for(lambda: worker_pid(net), 30, "the worker")
    sender.start()
    wait_for(lambda: len(runs(marker)) >= RATE * 5, 30, "five seconds of calls run")
    own_redis.stop()
    down_at = time.monotonic()
    wait_for(lambda: time.monotonic() - down_at >= 5, 10, "Redis down for 5 s")
    own_redis.start()
    back_at, served = time.monotonic(), len(runs(marker))
    wait_for(lambda: len(runs(marker)) > served, 60, "the worker to run calls again after Redis came back",
             interval=0.05)
    print(f"serving again {time.monotonic() - back_at:.1f} s after Redis came back")
    assert alive(pid), "the worker died with the Redis restart"
    wait_for(lambda: not sender.running(), SEND_FOR + 60, "the sender to finish")
    found = figures(net, sender, marker)
    assert alive(pid) and worker_pid(net) == pid, "the worker was replaced"
    assert found["returned"] == found["sent"] == found["recorded"], found
