"""A real pyfi network for the client tests: a git repo, a database, one agent.

Two stacks: the embedded default (SQLite database, broker and backend) and
PostgreSQL with Redis as broker and backend. Broker queue names on Redis are
shared by everyone using the server, so the Redis stack claims a database
number of its own (8-15) with a key that expires, and gives it back at the end.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from sqlalchemy import text

from network import make_repo, wait_for  # noqa: F401 - shared harness helpers, re-exported

PYFI = [sys.executable, "-c", "from pyfi.cli import main; main()"]
REDIS_DBS = range(8, 16)
CLAIM_KEY, CLAIM_SECONDS = "pyfi-test-client-claim", 3600


def claim_redis_db(base_url: str) -> tuple[str, Callable[[], None]]:
    """A Redis URL on a database number nobody else running these tests holds."""
    import redis

    token = uuid.uuid4().hex
    for number in REDIS_DBS:
        url = f"{base_url.rsplit('/', 1)[0]}/{number}"
        client = redis.Redis.from_url(url)
        if client.set(CLAIM_KEY, token, nx=True, ex=CLAIM_SECONDS):
            def release(client: Any = client) -> None:
                if client.get(CLAIM_KEY) == token.encode():
                    client.delete(CLAIM_KEY)
            return url, release
    raise AssertionError(f"every Redis database {REDIS_DBS.start}-{REDIS_DBS.stop - 1} is claimed by another test run")


@dataclass
class Network:
    kind: str
    tmp: Path
    env: dict[str, str]
    db_url: str
    agent: subprocess.Popen | None = None
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    def settings(self) -> Any:
        from pyfi.config import resolve

        return resolve({}, self.env)

    def start_agent(self, node: str = "client-node") -> None:
        log = open(self.tmp / "agent.log", "ab")
        self.agent = subprocess.Popen([*PYFI, "agent", "start", "-n", node], env=self.process_env(),
                                      stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

    def process_env(self) -> dict[str, str]:
        """This process's environment without inherited PYFI_* settings, plus the network's."""
        clean = {k: v for k, v in os.environ.items() if not k.startswith("PYFI_") or k.startswith("PYFI_TEST")}
        return {**clean, **self.env}

    def agent_log(self) -> str:
        path = self.tmp / "agent.log"
        return path.read_text()[-3000:] if path.exists() else ""

    def stop(self) -> None:
        """SIGTERM the agent (it stops its workers), then make sure nothing outlives the tests."""
        if self.agent is not None and self.agent.poll() is None:
            self.agent.send_signal(signal.SIGTERM)
            try:
                self.agent.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.agent.pid, signal.SIGKILL)
                self.agent.wait(timeout=10)
        for meta in (Path(self.env["PYFI_HOME"]) / "agents").glob("*/run/*/meta.json"):
            try:
                os.killpg(json.loads(meta.read_text())["pid"], signal.SIGKILL)
            except (OSError, ValueError, KeyError):
                pass  # already gone: the agent stopped it
        for cleanup in reversed(self.cleanups):
            cleanup()


def open_network(kind: str, tmp: Path, request: Any, repo_files: dict[str, str]) -> Iterator[Network]:
    """Build a stack of ``kind`` ("sqlite" or "postgres"), start one agent, yield it, tear it all down."""
    from pyfi.core.access import bootstrap_admin
    from pyfi.db import migrate
    from pyfi.db.engine import session_scope

    home = tmp / "home"
    repo = make_repo(tmp / "repo", repo_files)
    env = {"PYFI_HOME": str(home), "PYFI_USER": "admin", "PYFI_EXAMPLE_REPO": str(repo),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")]))}
    network = Network(kind, tmp, env, "")
    try:
        if kind == "sqlite":
            network.db_url = f"sqlite:///{home}/pyfi.db"
            env.update(PYFI_BROKER=f"sqla+sqlite:///{home}/broker.db", PYFI_BACKEND=f"db+sqlite:///{home}/results.db",
                       PYFI_PUBSUB=f"sqlite:///{home}/pubsub.db")
        else:
            network.db_url = request.getfixturevalue("pg_migrated")
            migrate.upgrade(network.db_url)  # another test may have dropped the shared schema
            _truncate(network.db_url)
            redis_url, release = claim_redis_db(_redis_base())
            network.cleanups.append(release)
            env.update(PYFI_BROKER=redis_url, PYFI_BACKEND=redis_url, PYFI_PUBSUB=redis_url)
        env["PYFI_DB"] = network.db_url
        migrate.upgrade(network.db_url)
        with session_scope(network.db_url) as session:
            bootstrap_admin(session, "admin")
        network.start_agent()
        yield network
    finally:
        network.stop()


def _redis_base() -> str:
    """conftest's Redis URL, skipping (or failing under CI) when the server is down."""
    import redis
    from conftest import REDIS_URL, require_service

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        require_service("Redis", str(exc))
    return REDIS_URL


def _truncate(url: str) -> None:
    """Empty every table: the PostgreSQL database is shared by the whole test session."""
    from conftest import truncate_all

    truncate_all(url)


def calls_of_flow(db_url: str, tracking: str) -> list[dict[str, Any]]:
    """The recorded calls of one flow (the recorder writes in batches: poll for them)."""
    from pyfi.db.engine import get_engine

    with get_engine(db_url).connect() as conn:
        rows = conn.execute(text("SELECT id, name, parent, tracking, state FROM calls WHERE tracking = :t"),
                            {"t": tracking}).mappings().all()
    return [dict(r) for r in rows]
