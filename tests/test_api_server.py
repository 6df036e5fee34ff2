"""``pyfi api start`` as a user runs it: serves and logs requests, stops on SIGTERM, and says in one line why it cannot."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
import pytest
from apiserver import free_port
from network import answers

from pyfi.testing import wait_for

PYFI = [sys.executable, "-m", "pyfi.cli"]


def start(port: int, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(PYFI + ["api", "start", "-p", str(port), *extra], env=dict(os.environ),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("db_kind", ["sqlite"])
def test_it_serves_logs_each_request_and_stops_cleanly(db_url):  # (on SIGTERM; Ctrl-C: the event-stream test)
    stop = signal.SIGTERM
    port = free_port()
    server = start(port)
    try:
        wait_for(lambda: answers(f"http://127.0.0.1:{port}/api/openapi.json"), 30, "the API to answer")
        taken = start(port)
        assert taken.wait(60) == 1
        assert taken.stderr.read().strip().splitlines()[-1] == (
            f"Error: port {port} on 127.0.0.1 is in use (stop what listens there or pass another -p PORT)")
        assert httpx.get(f"http://127.0.0.1:{port}/api/queues", timeout=5).status_code == 401
    finally:
        server.send_signal(stop)
        code = server.wait(30)
    requests, log = server.stdout.read(), server.stderr.read()
    assert code == 0, log
    assert '"GET /api/openapi.json HTTP/1.1" 200' in requests and '"GET /api/queues HTTP/1.1" 401' in requests
    assert "Shutting down" in log and "Traceback" not in log


@pytest.mark.parametrize("db_kind", ["sqlite"])
def test_it_refuses_a_database_it_cannot_serve(db_kind, empty_db_url, monkeypatch):
    monkeypatch.setenv("PYFI_DB", empty_db_url)
    result = subprocess.run(PYFI + ["api", "start", "-p", str(free_port())], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("Error: ") and "pyfi db init" in result.stderr


@pytest.mark.parametrize("db_kind", ["postgres"])
def test_it_needs_the_database_owners_login(db_url, run_cli, monkeypatch):
    import uuid

    name = f"erin_{uuid.uuid4().hex[:6]}"
    assert run_cli("add", "user", "-n", name, "-e", "e@example.org", "-p", "pw-erin").exit_code == 0
    monkeypatch.setenv("PYFI_USER", name)
    monkeypatch.setenv("PYFI_PASSWORD", "pw-erin")
    result = subprocess.run(PYFI + ["api", "start", "-p", str(free_port())], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "the API server needs the database owner's login" in result.stderr


@pytest.mark.parametrize("db_kind", ["sqlite"])
def test_open_event_streams_end_when_it_stops(db_url):
    import threading

    from apiserver import ROOT, add_users, login

    add_users(db_url)
    port = free_port()
    server, lines = start(port), []
    try:
        wait_for(lambda: answers(f"http://127.0.0.1:{port}/api/openapi.json"), 30, "the API to answer")
        token = login(f"http://127.0.0.1:{port}/api", ROOT).json()["access_token"]

        def listen() -> None:
            with httpx.stream("GET", f"http://127.0.0.1:{port}/api/events", timeout=60,
                              headers={"Authorization": f"Bearer {token}"}) as answer:
                lines.extend(answer.iter_lines())

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        wait_for(lambda: ": listening" in lines, 30, "the stream to open")
    finally:
        server.send_signal(signal.SIGINT)  # Ctrl-C
        code = server.wait(30)
    listener.join(30)
    log = server.stderr.read()
    assert code == 0 and not listener.is_alive(), log  # the stream ended with the server, rather than holding it
    assert "Traceback" not in log and "Exception in ASGI application" not in log, log
