"""Shared pieces of the benchmarks: stacks, a throw-away database, child processes, statistics.

Everything a benchmark creates is its own: a temporary PYFI_HOME, a
PostgreSQL database with a generated name (dropped at the end), broker
queues named after a random run id, and child processes that lead their
own session so a whole process group can be stopped at the end, even on
Ctrl-C or an error.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Collection, Iterator, Sequence

from sqlalchemy import create_engine, text

from pyfi.config import Settings, embedded_defaults, resolve
from pyfi.testing import wait_for  # noqa: F401 - the benchmarks' polling helper, the tests' too

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "processors"
PG_ADMIN = os.environ.get("PYFI_BENCH_PG", "postgresql+psycopg2://postgres@localhost:5432/postgres")
REDIS = os.environ.get("PYFI_BENCH_REDIS", "redis://localhost:6379/0")
AMQP = os.environ.get("PYFI_BENCH_AMQP", "amqp://guest:guest@localhost:5672//")
STACKS = ("redis", "rabbitmq", "embedded")
USER = "bench"


def run_id() -> str:
    return uuid.uuid4().hex[:8]


# -- the database ----------------------------------------------------------------------
@contextlib.contextmanager
def fresh_postgres(admin_url: str = PG_ADMIN) -> Iterator[str]:
    """A new, empty PostgreSQL database (generated name), dropped on exit."""
    name = f"pyfi_bench_{run_id()}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))  # generated above, never user input
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        from pyfi.db.engine import dispose_all

        dispose_all()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def init_database(url: str) -> None:
    """Migrate to head and make the bench user an administrator."""
    from pyfi.core.access import bootstrap_admin
    from pyfi.db import migrate
    from pyfi.db.engine import session_scope

    migrate.upgrade(url)
    with session_scope(url) as session:
        bootstrap_admin(session, USER)


# -- stacks ------------------------------------------------------------------------------
def stack_urls(stack: str, home: Path, pg_url: str | None) -> dict[str, str]:
    """db/broker/backend/pubsub URLs of a named stack."""
    if stack == "embedded":
        defaults = embedded_defaults(home)
        return {k: defaults[k] for k in ("db", "broker", "backend", "pubsub")}
    assert pg_url is not None, "the redis and rabbitmq stacks use PostgreSQL"
    broker = REDIS if stack == "redis" else AMQP
    return {"db": pg_url, "broker": broker, "backend": REDIS, "pubsub": REDIS}


def stack_env(urls: dict[str, str], home: Path) -> dict[str, str]:
    """The environment of every pyfi process of this run (no inherited PYFI_*)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYFI_")}
    env.update(PYFI_DB=urls["db"], PYFI_BROKER=urls["broker"], PYFI_BACKEND=urls["backend"],
               PYFI_PUBSUB=urls["pubsub"], PYFI_HOME=str(home), PYFI_USER=USER)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def settings_for(env: dict[str, str]) -> Settings:
    return resolve({}, env)


@contextlib.contextmanager
def stack(name: str, keep_home: bool = False) -> Iterator[tuple[Settings, dict[str, str], Path]]:
    """Settings, child environment and home of a fresh, initialised stack."""
    if name not in STACKS:
        raise SystemExit(f"unknown stack {name!r}: choose one of {', '.join(STACKS)}")
    with tempfile.TemporaryDirectory(prefix="pyfi-bench-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        with (contextlib.nullcontext(None) if name == "embedded" else fresh_postgres()) as pg_url:
            urls = stack_urls(name, home, pg_url)
            init_database(urls["db"])
            env = stack_env(urls, home)
            yield settings_for(env), env, home


# -- leaving nothing behind on shared brokers ------------------------------------------------
def forget_run(settings: Settings, rid: str, queues: Sequence[str], call_ids: Sequence[str]) -> None:
    """Delete what a run left on the (shared) broker and result backend: its queues, bindings, results.

    Best effort, after the workers stopped: a failure is reported, not raised.
    The embedded stack's broker and backend are files in the run's temporary
    home, which goes with it: nothing to do.
    """
    from pyfi.messaging.app import make_app

    if settings.broker.startswith("sqla+"):
        return

    app = make_app(settings)
    try:
        delete_queues(app, queues)
        if settings.broker.startswith(("redis://", "rediss://")):
            delete_redis_keys_with(settings.broker, rid)
        delete_results(app, call_ids)
    except Exception as exc:  # noqa: BLE001 - cleanup is best effort; say what was left
        print(f"warning: could not clean up run {rid} on the broker/backend: {exc}", file=sys.stderr)
    finally:
        app.close()


def delete_queues(app: Any, names: Sequence[str]) -> None:
    """Delete each queue and its same-named exchange (pyfi's routing), on any transport."""
    from pyfi.messaging.routing import kombu_queue

    with app.connection_for_write() as conn:
        channel = conn.default_channel
        for name in names:
            queue = kombu_queue(name).bind(channel)
            queue.delete()
            queue.exchange.delete()


def delete_redis_keys_with(url: str, rid: str) -> None:
    """Keys whose name holds the run's random id (kombu bindings of its queues)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"*{rid}*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start:start + 500])
    finally:
        client.close()


def delete_results(app: Any, call_ids: Sequence[str]) -> None:
    """The run's results on a Redis result backend (a SQLite one goes with the temp home)."""
    backend = app.backend
    client = getattr(backend, "client", None)
    if client is None:
        return
    keys = [backend.get_key_for_task(call_id) for call_id in call_ids]
    for start in range(0, len(keys), 500):
        client.delete(*keys[start:start + 500])


# -- child processes -------------------------------------------------------------------
@dataclass
class Child:
    name: str
    proc: subprocess.Popen
    log: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


class Children:
    """Child processes, each leading its own process group; stop() takes the groups down.

    With ``marker`` (the run's PYFI_HOME), anything still running with it in its
    environment after that (an agent's workers lead their own sessions) is killed too.
    """

    def __init__(self, marker: Path | None = None) -> None:
        self.children: list[Child] = []
        self.marker = marker

    def start(self, name: str, argv: Sequence[str], env: dict[str, str], log: Path, cwd: Path | None = None,
              stdin_line: str | None = None) -> Child:
        """``stdin_line``: written to the child's stdin, which is then closed (a worker's credentials)."""
        with open(log, "ab") as out:
            proc = subprocess.Popen(list(argv), env=env, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL if stdin_line is None else subprocess.PIPE, cwd=cwd,
                                    start_new_session=True)
        if stdin_line is not None:
            proc.stdin.write(stdin_line.encode())
            proc.stdin.close()
        child = Child(name, proc, log)
        self.children.append(child)
        return child

    def stop(self, child: Child, grace: float = 15.0) -> None:
        """SIGTERM the group (warm shutdown), SIGKILL what is left after ``grace`` seconds."""
        _signal_group(child.proc.pid, signal.SIGTERM)
        try:
            child.proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass
        _signal_group(child.proc.pid, signal.SIGKILL)  # pool children or grandchildren left behind
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.proc.wait(5)

    def stop_all(self) -> None:
        for child in reversed(self.children):
            self.stop(child)
        self.children.clear()
        if self.marker is not None:
            for pid in processes_with_home(self.marker):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)

    def __enter__(self) -> "Children":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is not None and not issubclass(exc_type, KeyboardInterrupt):
            self.print_logs()
        self.stop_all()

    def print_logs(self) -> None:
        for child in self.children:
            print(f"--- last lines of {child.name} ({child.log}) ---\n{child.tail()}", file=sys.stderr)


def processes_with_home(home: Path) -> list[int]:
    """Live processes (other than this one) whose environment sets PYFI_HOME to ``home``."""
    needle = b"PYFI_HOME=" + str(home).encode() + b"\0"
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = Path(entry.path, "environ").read_bytes() + b"\0"
        except OSError:
            continue
        if needle in environ:
            found.append(int(entry.name))
    return found


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so every ``finally`` (cleanup) runs."""
    def handler(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


@contextlib.contextmanager
def interrupts_reported() -> Iterator[None]:
    """Ctrl-C: one line instead of a traceback, exit status 130 (cleanup has run by then)."""
    try:
        yield
    except KeyboardInterrupt:
        print("interrupted; child processes stopped and the benchmark database dropped", file=sys.stderr)
        raise SystemExit(130) from None


def python() -> str:
    return sys.executable


# -- waiting and statistics --------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


READY = ("SUCCESS", "FAILURE", "REVOKED")
DB_POLL = 0.01  # seconds between result polls on a database result backend


class Results:
    """Which pending calls have a result, found the same way for both sides.

    On Redis, Celery's result backend publishes every result it stores on the
    result's key, so one pattern subscription (opened before any call is
    sent) hears each result as it lands: no CPU while waiting, and the time
    seen is when the result arrived. Polling every pending key instead (MGET
    every 2 ms) costs the client 1.6-1.9 ms of CPU per call on 2 cores, and
    since that cost is per second rather than per call, it charges the
    slower side more per call, widening any gap. A database result backend
    (the embedded stack) is polled.

    (Celery's own Redis result consumer is no use here: it unsubscribes a call
    as soon as its AsyncResult is garbage collected, and pyfi's ``send``, like
    most senders, keeps only the id.)
    """

    def __init__(self, app: Any) -> None:
        self.backend = app.backend
        self.redis = hasattr(self.backend, "client")
        self.arrived: dict[str, tuple[float, str]] = {}  # call id -> (seen, state), maybe not pending yet
        if self.redis:
            key = self.backend.get_key_for_task("x")  # celery-task-meta-x (with any global prefix)
            self.prefix = (key.decode() if isinstance(key, bytes) else key)[:-1]
            self.subscription = self.backend.client.pubsub()
            self.subscription.psubscribe(self.prefix + "*")
            message = self.subscription.get_message(timeout=5.0)  # the confirmation: subscribed from now on
            if message is None or message["type"] != "psubscribe":
                raise RuntimeError(f"could not subscribe to the results ({message!r})")

    def poll(self, pending: Collection[str], timeout: float) -> list[tuple[str, float, str]]:
        """(call id, time the result was seen, state) of the pending calls now ready (waits up to ``timeout``)."""
        if self.redis:
            self.listen(timeout)
        else:
            time.sleep(max(timeout, DB_POLL))  # do not hammer a SQLite result file
            now = time.perf_counter()
            for call_id, state in self.fetch_database(list(pending)).items():
                self.arrived[call_id] = (now, state)
        ready = []
        for call_id in pending:
            seen_state = self.arrived.get(call_id)
            if seen_state is not None and seen_state[1] in READY:
                del self.arrived[call_id]
                ready.append((call_id, *seen_state))
        return ready

    def listen(self, timeout: float) -> None:
        """Take the results published so far, waiting up to ``timeout`` for the first."""
        message = self.subscription.get_message(timeout=timeout)
        while message is not None:
            if message["type"] == "pmessage":
                key = message["channel"].decode() if isinstance(message["channel"], bytes) else message["channel"]
                self.arrived[key[len(self.prefix):]] = (time.perf_counter(), json.loads(message["data"])["status"])
            message = self.subscription.get_message(timeout=0)

    def fetch_database(self, ids: list[str]) -> dict[str, str]:
        table = self.backend.task_cls
        session = self.backend.ResultSession()
        try:
            return dict(session.query(table.task_id, table.status).filter(table.task_id.in_(ids)).all())
        finally:
            session.close()
