"""A PostgreSQL outage under load stops nothing and loses nothing.

The network runs on a PostgreSQL cluster and a Redis server of the test's
own (never the shared ones: the test stops its database). Calls go to one
processor at a steady rate from a thread, sent with the Python client
(:class:`Sender`), while PostgreSQL is stopped for
:data:`OUTAGE` seconds (``pg_ctl stop -m fast``, then started again). The
agent must still run, every call sent must return its result (Celery
results on the test's Redis), and every call must be recorded finished with
its events once the database is back. The figures are printed for
bench/README.md ("Fault injection").
"""
from __future__ import annotations

import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from sqlalchemy import func, select

from conftest import require_service
from network import Network, health, make_repo, wait_for
from pgcluster import Cluster, cluster_of_our_own, free_port


RATE = 20  # calls a second
SENDING = 20.0  # seconds of sending (until 3 s after PostgreSQL is back)
OUTAGE_AFTER = 7.0  # seconds of sending before PostgreSQL stops
OUTAGE = 10.0  # seconds PostgreSQL stays down

MODULE = '''
import os

def note(x):
    with open(os.environ["PYFI_TEST_MARKER"], "a") as fh:
        fh.write(f"{x}\\n")
    return x
'''


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A cluster of this test's own: stopping it disturbs no other test."""
    with cluster_of_our_own() as own:
        yield own


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[str]:
    """A redis-server of this test's own on a free port, its files in a temp dir."""
    binary = shutil.which("redis-server")
    if binary is None:
        require_service("redis-server", "not installed")
    port, where = free_port(), tmp_path / "redis"
    where.mkdir()
    server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(where), "--save", "",
                               "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}"
    try:
        import redis

        wait_for(lambda: _answers(redis.Redis.from_url(url)), 20, "redis-server to answer")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=20)


def _answers(client: Any) -> bool:
    try:
        return bool(client.ping())
    except OSError:
        return False
    except Exception:  # noqa: BLE001 - redis' ConnectionError while it starts
        return False


@pytest.fixture
def net(cluster: Cluster, redis_server: str, tmp_path: Path) -> Iterator[Network]:
    url, _owner, _password = cluster.new_database()
    env = {"PYFI_HOME": str(tmp_path / "home"), "PYFI_DB": url, "PYFI_USER": "admin",
           "PYFI_BROKER": f"{redis_server}/0", "PYFI_BACKEND": f"{redis_server}/1", "PYFI_PUBSUB": f"{redis_server}/2"}
    network = Network(env, tmp_path)
    network.cli("db", "init")
    yield network
    network.close()


def pg_ctl(cluster: Cluster, *args: str) -> None:
    subprocess.run(cluster.as_user + [str(cluster.bindir / "pg_ctl"), "-D", str(cluster.root / "data"), *args],
                   check=True, capture_output=True, timeout=120)


def stop_database(cluster: Cluster) -> None:
    pg_ctl(cluster, "stop", "-m", "fast", "-w")


def start_database(cluster: Cluster) -> None:
    options = f"-p {cluster.port} -k {cluster.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    pg_ctl(cluster, "-o", options, "-l", str(cluster.root / "log"), "-w", "start")


class Sender(threading.Thread):
    """Sends one call every 1/RATE s to a socket with the Python client (pyfi.client), noting their ids.

    The client plans a socket's routes from the database once a second, and keeps the last ones while it is away.
    """

    def __init__(self, net: Network, socket: str) -> None:
        super().__init__(name="sender", daemon=True)
        from pyfi.client import Context, Socket
        from pyfi.config import resolve

        self.context = Context(settings=resolve(env=net.env))
        self.socket = Socket(name=socket, context=self.context)
        self.app = self.context.app
        self.ids: list[str] = []
        self.failures: list[str] = []

    def run(self) -> None:
        begun, pace = time.monotonic(), threading.Event()
        for number in range(int(RATE * SENDING)):
            pace.wait(max(0.0, begun + number / RATE - time.monotonic()))  # the rate, not a wait for an effect
            try:
                self.ids.append(self.socket.delay(number).id)
            except Exception as exc:  # noqa: BLE001 - counted: a call that could not be sent
                self.failures.append(f"{number}: {exc}")


@dataclass
class Figures:
    sent: int = 0
    returned: int = 0
    recorded: int = 0
    duplicates: int = 0
    lost: int = 0
    records_back: float | None = None  # seconds from the database's return to every call sent until then recorded
    agent_back: float | None = None  # seconds from the database's return to the agent's health saying so
    notes: list[str] = field(default_factory=list)


def recorded(net: Network, ids: list[str]) -> set[str]:
    """The calls among ``ids`` recorded finished with their received, prerun and postrun events."""
    from pyfi.db.engine import session_scope
    from pyfi.db.models import Call, Event

    wanted = ("received", "prerun", "postrun")
    with session_scope(net.db_url) as session:
        rows = session.execute(
            select(Call.id).join(Event, Event.call_id == Call.id)
            .where(Call.id.in_(ids), Call.state == "finished", Event.name.in_(wanted))
            .group_by(Call.id).having(func.count(func.distinct(Event.name)) == len(wanted))).scalars()
        return set(rows)


def all_recorded(net: Network, ids: list[str]) -> set[str] | None:
    try:
        done = recorded(net, ids)
    except Exception:  # noqa: BLE001 - the database is still starting
        return None
    return done if len(done) == len(ids) else None


def results(sender: Sender, timeout: float) -> dict[str, Any]:
    """The calls' results, gathered until every call has one or ``timeout`` has passed (the rest: not returned)."""
    found: dict[str, Any] = {}

    def gather() -> bool:
        for call_id in sender.ids:
            result = sender.app.AsyncResult(call_id)
            if call_id not in found and result.ready():
                found[call_id] = result.get(timeout=5)
        return len(found) == len(sender.ids)

    try:
        wait_for(gather, timeout, "every call's result", interval=0.5)
    except AssertionError:
        pass
    return found


def first_held(checks: dict[str, Callable[[], Any]], since: float, timeout: float) -> dict[str, float]:
    """Seconds from ``since`` until each check first held, polled together until all held or ``timeout`` passed."""
    seen: dict[str, float] = {}

    def poll() -> bool:
        for name, check in checks.items():
            if name not in seen and check():
                seen[name] = time.monotonic() - since
        return len(seen) == len(checks)

    try:
        wait_for(poll, timeout, " and ".join(checks))
    except AssertionError:
        pass
    return seen


def start_network(net: Network, tmp_path: Path, marker: Path, port: int) -> Any:
    """Processor p (socket ``note``) run by agent node1 with its health endpoint on ``port``; the agent's process."""
    repo = make_repo(tmp_path / "repo", {"faults.py": MODULE})
    net.cli("add", "queue", "-n", net.name("q"))
    net.cli("add", "processor", "-n", "p", "-m", "faults", "-g", str(repo))
    net.cli("add", "socket", "-n", net.name("note"), "-q", net.name("q"), "-pn", "p", "-t", "note")
    agent = net.start_agent("node1", {"PYFI_TEST_MARKER": str(marker)}, "-p", str(port))
    wait_for(lambda: net.processor("p")["status"] == "running", 90, "p running", interval=0.2)
    return agent


def outage(cluster: Cluster, port: int) -> None:
    """PostgreSQL down for OUTAGE seconds; the agent must see it away meanwhile."""
    stop_database(cluster)
    down = time.monotonic()
    wait_for(lambda: (health(port) or {}).get("database") == "away", OUTAGE, "the agent to see the database away")
    threading.Event().wait(max(0.0, down + OUTAGE - time.monotonic()))  # the rest of the fault's length


def count(net: Network, sender: Sender, marker: Path, figures: Figures) -> dict[str, Any]:
    """Once sending is over: gather results and records, fill ``figures`` in; the results by call id."""
    sender.join(timeout=SENDING + 60)
    sender.context.close()
    returned = results(sender, 90)
    try:
        wait_for(lambda: all_recorded(net, sender.ids), 60, "every call recorded", interval=0.5)
    except AssertionError as exc:
        figures.notes.append(str(exc)[:200])
    done = recorded(net, sender.ids)
    runs = marker.read_text().split() if marker.exists() else []
    figures.sent, figures.returned, figures.recorded = len(sender.ids), len(returned), len(done)
    figures.duplicates = len(runs) - len(set(runs))
    figures.lost = figures.sent - len(set(returned) & done)
    return returned


@pytest.mark.slow
@pytest.mark.timeout(480)
def test_a_database_outage_under_load_stops_nothing_and_loses_nothing(net: Network, cluster: Cluster,
                                                                       tmp_path: Path) -> None:
    marker, port = tmp_path / "runs.txt", free_port()
    agent = start_network(net, tmp_path, marker, port)
    sender = Sender(net, net.name("note"))
    sender.start()
    wait_for(lambda: len(sender.ids) >= RATE * OUTAGE_AFTER, 60, "calls sent before the outage")
    outage(cluster, port)
    alive_through_outage = agent.poll() is None
    start_database(cluster)
    back, before_back = time.monotonic(), list(sender.ids)
    times = first_held({"records": lambda: all_recorded(net, before_back),
                        "agent": lambda: (health(port) or {}).get("database") == "ok"}, back, 60)
    figures = Figures(records_back=times.get("records"), agent_back=times.get("agent"))
    returned = count(net, sender, marker, figures)
    print(f"\nPostgreSQL outage of {OUTAGE:.0f} s at {RATE}/s: {figures}; not sent: {len(sender.failures)}; "
          f"agent alive: {agent.poll() is None}")

    assert alive_through_outage and agent.poll() is None, f"the agent exited ({agent.poll()}):\n{net.agent_log('node1')[-2000:]}"
    assert not sender.failures, f"{len(sender.failures)} calls not sent: {sender.failures[:3]}"
    assert figures.sent == int(RATE * SENDING)
    assert figures.returned == figures.sent, f"{figures.sent - figures.returned} calls returned no result"
    assert all(returned[call_id] == number for number, call_id in enumerate(sender.ids))
    assert figures.recorded == figures.sent and figures.lost == 0, figures
    assert figures.agent_back is not None, "the agent's health never said it has the database again"
    log = net.agent_log("node1")
    assert log.count("lost the database") == 1 and log.count("has the database again") == 1, log[-3000:]
    worker_log = "".join(p.read_text() for p in Path(net.env["PYFI_HOME"]).glob("agents/*/run/*/worker.log"))
    assert worker_log.count("cannot read cancelled calls now") == 1, "said once an outage, not at every poll"


@pytest.mark.slow
def test_an_agent_stopped_while_the_database_is_away_stops_its_workers_and_exits(net: Network, cluster: Cluster,
                                                                                 tmp_path: Path) -> None:
    marker, port = tmp_path / "runs.txt", free_port()
    agent = start_network(net, tmp_path, marker, port)
    [worker] = [row["pid"] for row in net.json("ls", "workers")["rows"]]
    stop_database(cluster)
    wait_for(lambda: (health(port) or {}).get("database") == "away", 30, "the agent to see the database away")
    assert net.stop_agent("node1") == 0, net.agent_log("node1")[-2000:]
    assert agent.poll() == 0
    wait_for(lambda: not Path(f"/proc/{worker}").exists(), 10, "its worker gone")
    assert "stopped while the database is away" in net.agent_log("node1")


def test_only_a_database_that_cannot_be_reached_is_an_outage() -> None:
    from redis.exceptions import ConnectionError as RedisDown

    from pyfi.agent.outage import database_away
    from pyfi.db.engine import session_scope
    from pyfi.errors import BackendUnavailable

    unreachable = f"postgresql://nobody@127.0.0.1:{free_port()}/pyfi"  # nothing listens there
    with pytest.raises(BackendUnavailable) as raised, session_scope(unreachable) as session:
        session.execute(select(1))
    assert database_away(raised.value)
    try:
        raise BackendUnavailable("lost pub/sub connection") from RedisDown("refused")
    except BackendUnavailable as exc:
        assert not database_away(exc), "a broker or pub/sub server away is not the database"
    assert not database_away(ValueError("a bug"))


def test_the_watch_says_once_that_it_lost_the_database_and_waits_longer_between_tries(caplog) -> None:
    from pyfi.agent.outage import RETRY_PAUSES, DatabaseWatch
    from pyfi.db.engine import session_scope

    unreachable = f"postgresql://nobody@127.0.0.1:{free_port()}/pyfi"
    watch = DatabaseWatch(unreachable, "node1")

    def step() -> None:
        with session_scope(unreachable) as session:
            session.execute(select(1))

    pauses = []
    for _ in range(len(RETRY_PAUSES) + 2):
        tried_at = time.monotonic()
        assert watch.attempt(step) is False and watch.away and not watch.due()
        pauses.append(round(watch.next_try - tried_at, 1))
    assert pauses[-1] == pauses[-2] == RETRY_PAUSES[-1] and pauses == sorted(pauses)
    assert sum("lost the database" in record.getMessage() for record in caplog.records) == 1
    with pytest.raises(ValueError):
        watch.attempt(lambda: int("not a number"))  # a bug goes on up: it is no outage
