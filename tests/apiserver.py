"""A real API server for a test module: uvicorn on a free port in a thread, over a fresh database.

``api_network(request, tmp_path_factory, kind)`` makes the database (SQLite
file, or the session's PostgreSQL database emptied), an administrator
:data:`ROOT` holding ALL and a user :data:`NOBODY` holding nothing (both with
:data:`PASSWORD`), starts the server and yields an :class:`ApiNetwork`;
the module's fixture decides the scope (one per module keeps tests fast).
"""
from __future__ import annotations

import contextlib
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from pyfi.testing import wait_for

PASSWORD = "correct horse"
#: user names unique to this test run: on PostgreSQL users are database roles, which the cluster's other databases share
SUFFIX = uuid.uuid4().hex[:6]
ROOT, NOBODY = f"root_{SUFFIX}", f"nobody_{SUFFIX}"


@dataclass
class ApiNetwork:
    url: str  # the API's root, http://127.0.0.1:PORT/api
    db_url: str
    home: Path
    app: Any
    tokens: dict[str, str]

    def client(self, user: str | None = ROOT, token: str | None = None, **kwargs: Any) -> httpx.Client:
        """A client acting as ``user`` (its token from the start), or with ``token``, or with none."""
        token = token or (self.tokens[user] if user else None)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kwargs)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """``app`` served by uvicorn on a free port in a thread; yields its base URL; stopped cleanly at the end."""
    from pyfi.api.server import server_for

    port = free_port()
    server = server_for(app, "127.0.0.1", port, log_level="warning")
    thread = threading.Thread(target=server.run, name="api-server", daemon=True)
    thread.start()
    wait_for(lambda: server.started or not thread.is_alive(), 20, "the API server to start")
    assert server.started, "the API server did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


def make_database(request: Any, kind: str, home: Path) -> str:
    from conftest import truncate_all

    from pyfi.db import migrate

    if kind == "sqlite":
        url = f"sqlite:///{home}/pyfi.db"
    else:
        url = request.getfixturevalue("pg_migrated")
    migrate.upgrade(url)
    if kind != "sqlite":
        truncate_all(url)
    return url


def add_users(url: str) -> None:
    from pyfi.core import users
    from pyfi.core.access import Actor, bootstrap_admin
    from pyfi.db.engine import session_scope

    with session_scope(url) as session:
        bootstrap_admin(session, "admin")
        admin = Actor("admin")
        for name in (ROOT, NOBODY):
            users.add_user(session, admin, name, f"{name}@example.org", PASSWORD)
        users.add_privilege(session, admin, "ALL", user=ROOT)


def login(url: str, user: str, password: str = PASSWORD) -> httpx.Response:
    return httpx.post(f"{url}/token", data={"username": user, "password": password}, timeout=30)


@contextlib.contextmanager
def api_network(request: Any, tmp_path_factory: Any, kind: str) -> Iterator[ApiNetwork]:
    from conftest import drop_user_roles

    from pyfi.api.app import create_app

    home = tmp_path_factory.mktemp(f"api-{kind}")
    with pytest.MonkeyPatch.context() as patch:
        for var in [v for v in os.environ if v.startswith("PYFI_") and not v.startswith("PYFI_TEST")]:
            patch.delenv(var)
        patch.setenv("PYFI_HOME", str(home))
        patch.setenv("PYFI_USER", "admin")
        url = make_database(request, kind, home)
        patch.setenv("PYFI_DB", url)
        try:
            add_users(url)
            app = create_app({"db": url})
            with serving(app) as base:
                api = f"{base}/api"
                tokens = {user: login(api, user).json()["access_token"] for user in (ROOT, NOBODY)}
                yield ApiNetwork(api, url, home, app, tokens)
        finally:
            if kind != "sqlite":
                drop_user_roles(url)


def build_flow(http, tag: str) -> None:
    """A queue, a processor, two sockets and a plug between them, all named after ``tag``."""
    for path, body in (("/queues", {"name": f"q-{tag}"}),
                       ("/processors", {"name": f"p-{tag}", "module": "pkg.mod", "gitrepo": "/tmp/repo"}),
                       ("/sockets", {"name": f"s1-{tag}", "queue": f"q-{tag}", "processor": f"p-{tag}", "task": "first"}),
                       ("/sockets", {"name": f"s2-{tag}", "queue": f"q-{tag}", "processor": f"p-{tag}", "task": "then"}),
                       ("/plugs", {"name": f"pl-{tag}", "queue": f"q-{tag}", "source": f"s1-{tag}", "target": f"s2-{tag}"})):
        answer = http.post(path, json=body)
        assert answer.status_code == 201, answer.text
