"""A real ``pyfi api start`` on a free port, over a real network, for the calls, events and metrics tests.

The network (tests/network.py) has the sample module's sockets ``echo``,
``shout`` (a plug sends every echo result on to it) and ``boom`` on one
queue, processor ``p``, and three users with passwords: ``ada`` holds ALL,
``rita`` READ, ``nell`` nothing (their names carry a suffix unique to the
run, :meth:`Api.who`: on PostgreSQL users are roles of the whole cluster).
Each test module opens one with :func:`open_api` (module-scoped: one server,
one agent), on the embedded default or on PostgreSQL with Redis.
"""
from __future__ import annotations

import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import httpx

from network import PYFI, Network, answers, build, free_port, stack_env, wait_for

#: user -> (password, rights)
USERS = {"ada": ("ada-pw-1234", ["ALL"]), "rita": ("rita-pw-1234", ["READ"]), "nell": ("nell-pw-1234", [])}
SUFFIX = uuid.uuid4().hex[:6]


def who(user: str) -> str:
    """The name a user of :data:`USERS` has in the network."""
    return f"{user}_{SUFFIX}"


@dataclass
class Api:
    net: Network
    names: dict[str, str]
    url: str
    tokens: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def who(user: str) -> str:
        return who(user)

    def token(self, user: str) -> str:
        """A bearer token from ``POST /api/token`` (kept for the module)."""
        if user not in self.tokens:
            answer = httpx.post(f"{self.url}/api/token", data={"username": who(user), "password": USERS[user][0]})
            assert answer.status_code == 200, answer.text
            self.tokens[user] = answer.json()["access_token"]
        return self.tokens[user]

    def client(self, user: str | None = "ada", timeout: float = 30.0) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token(user)}"} if user else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def call(self, socket: str, *args: Any, user: str = "ada", **kwargs: Any) -> str:
        """Send a call over HTTP; its id."""
        with self.client(user) as http:
            answer = http.post(f"/api/sockets/{self.names[socket]}/calls", json={"args": list(args), "kwargs": kwargs})
        assert answer.status_code == 202, answer.text
        return answer.json()["id"]

    def ended(self, call_id: str, timeout: float = 60.0) -> dict[str, Any]:
        """``GET /api/calls/{id}`` once the call finished or failed."""
        def read() -> dict[str, Any] | None:
            with self.client() as http:
                found = http.get(f"/api/calls/{call_id}")
            return found.json() if found.status_code == 200 and found.json()["state"] in ("finished", "failed") else None

        return wait_for(read, timeout, interval=0.2, what=f"call {call_id} ended")


def make_network(tmp: Path, kind: str, request: Any) -> tuple[Network, dict[str, str]]:
    """``kind``: "sqlite" (the embedded default), or "postgres" (the session's database, emptied, and Redis)."""
    from conftest import truncate_all

    from pyfi.core.access import bootstrap_admin
    from pyfi.db import migrate
    from pyfi.db.engine import session_scope

    home = tmp / "home"
    home.mkdir()
    if kind == "sqlite":
        env = stack_env("embedded", home, f"sqlite:///{home}/pyfi.db")
    else:
        env = stack_env("redis", home, request.getfixturevalue("pg_migrated"))
    migrate.upgrade(env["PYFI_DB"])
    if kind != "sqlite":
        truncate_all(env["PYFI_DB"])
    with session_scope(env["PYFI_DB"]) as session:
        bootstrap_admin(session, "admin")
    net = Network(env, tmp)
    names = build(net, {"echo": "echo", "shout": "upper", "boom": "boom"})
    net.cli("add", "plug", "-n", net.name("echo-to-shout"), "-q", names["queue"], "-s", names["echo"],
            "-t", names["shout"])
    for user, (password, rights) in USERS.items():
        net.cli("add", "user", "-n", who(user), "-e", f"{user}@localhost", "-p", password)
        for right in rights:
            net.cli("add", "privilege", "-u", who(user), "-n", right)
    return net, names


def open_api(tmp: Path, agent: bool = True, kind: str = "sqlite", request: Any = None) -> Iterator[Api]:
    """Build the network, start ``pyfi api start`` (and an agent unless told not to), yield, stop it all."""
    from conftest import drop_user_roles

    net, names = make_network(tmp, kind, request)
    port = free_port()
    log = open(tmp / "api.log", "ab")
    server = subprocess.Popen(PYFI + ["api", "start", "-p", str(port)], env=net.env, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: answers(url + "/api/openapi.json") or server.poll() is not None, 30,
                 what="pyfi api start answering")
        assert server.poll() is None, (tmp / "api.log").read_text()[-2000:]
        if agent:
            net.start_agent("api-node")
        yield Api(net, names, url)
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
        net.close()
        if kind != "sqlite":
            drop_user_roles(net.db_url)
