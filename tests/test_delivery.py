"""The embedded broker keeps every call until it is acknowledged, whatever happens to its consumer.

kombu's SQLite transport hid a message it handed out and never looked at it
again: a worker killed with SIGKILL (the OOM killer) took its calls with it,
and acknowledged messages stayed in broker.db for good.
"""
from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path

import pytest

from network import Network, build, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def db_kind() -> str:
    """The embedded default only: Redis gives a dead consumer's calls back after its visibility timeout."""
    return "sqlite"


def broker_rows(home: Path) -> tuple[int, int]:
    """(messages, delivery notes) in the embedded broker's tables."""
    with sqlite3.connect(home / "broker.db") as db:
        return (db.execute("SELECT count(*) FROM kombu_message").fetchone()[0],
                db.execute("SELECT count(*) FROM pyfi_delivery").fetchone()[0])


def test_a_call_taken_by_a_worker_killed_with_sigkill_is_run_by_the_next(net: Network, tmp_path: Path) -> None:
    names = build(net, {"slow": "slow"})
    marker = tmp_path / "runs.txt"
    net.start_agent("node1", {"PYFI_TEST_MARKER": str(marker)}, "--no-spares")
    wait_for(lambda: net.processor("p")["status"] == "running", 60, "p running", interval=0.2)
    call_id = net.cli("task", "run", "-s", names["slow"], "-d", "1", "--no-wait").stdout.strip()
    wait_for(lambda: marker.exists() and marker.read_text().strip(), 30, "the call to start")
    [worker] = [row["pid"] for row in net.json("ls", "workers")["rows"]]
    os.killpg(worker, signal.SIGKILL)  # the worker, its pool and its sidecar, with no chance to put the call back

    def finished() -> dict | None:
        listed = net.cli("ls", "call", "--id", call_id, "--result", "--json", check=False)
        call = net.json("ls", "call", "--id", call_id, "--result") if listed.returncode == 0 else None
        return call if call and call["state"] == "finished" else None

    call = wait_for(finished, 60, "the call to be run by the worker the agent started next")
    assert call["result"]["value"] == "slept" and len(marker.read_text().split()) == 2
    home = Path(net.env["PYFI_HOME"])
    assert broker_rows(home) == (0, 0), "an acknowledged call is deleted from the broker"
