"""The worker's sidecar: every process's records reach the database through it, and none is lost.

Each scenario runs in a fresh process (tests/sidecar_driver.py), because the
sidecar is forked; the database (SQLite and PostgreSQL) and the SQLite
pub/sub file are real.
"""
from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from sqlalchemy import select

from network import wait_for
from pyfi.db.engine import session_scope
from pyfi.db.models import Call, Event
from pyfi.enums import CallState
from pyfi.messaging.pubsub import subscriber_for

DRIVER = Path(__file__).with_name("sidecar_driver.py")


def drive(scenario: str, db_url: str, pubsub_url: str, calls: int) -> dict:
    done = subprocess.run([sys.executable, str(DRIVER), scenario, db_url, pubsub_url, str(calls)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def calls_and_events(db_url: str, prefix: str) -> tuple[list[Call], Counter]:
    with session_scope(db_url) as session:
        calls = list(session.scalars(select(Call).where(Call.id.like(f"{prefix}%"))))
        events = Counter(str(e.name) for e in session.scalars(select(Event).join(Call).where(Call.id.like(f"{prefix}%"))))
    return calls, events


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"  # exited, waiting for its (dead) parent's reaper


def test_records_of_every_process_are_written_and_published(db_url: str, tmp_path: Path) -> None:
    pubsub_url = f"sqlite:///{tmp_path / 'pubsub.db'}"
    subscriber = subscriber_for(pubsub_url, "q.p.*")
    result = drive("children", db_url, pubsub_url, 150)
    assert result["confirmed"] and not result["socket_left"]
    asker = next(r for r in result["reports"] if r["checked"])
    assert asker["flushed"] and asker["seen_after_flush"] == 150, "flush() returned before the records were written"
    for prefix in ("c0", "c1"):
        calls, events = calls_and_events(db_url, prefix)
        assert len(calls) == 150 and {c.state for c in calls} == {CallState.FINISHED}
        assert all(c.owner == "tester" and c.resultkey == f"key-{c.id}" and c.started <= c.finished for c in calls)
        assert events == {"received": 150, "prerun": 150, "postrun": 150}
    parent_calls, _ = calls_and_events(db_url, "parentcall")
    assert [c.state for c in parent_calls] == [CallState.REVOKED]
    running = [m for m in subscriber.listen(timeout=2) if m.data["state"] == "running"]
    assert len(running) == 300 and len({m.data["call"] for m in running}) == 300
    assert gone(result["sidecar_pid"])


def test_a_killed_pool_process_loses_none_of_the_calls_it_finished(db_url: str, tmp_path: Path) -> None:
    """Its calls were acknowledged, so nothing would redeliver them: their records must already be safe."""
    result = drive("killed_child", db_url, f"sqlite:///{tmp_path / 'pubsub.db'}", 120)
    assert result == {"killed": True, "confirmed": True}
    calls, events = calls_and_events(db_url, "killed")
    assert len(calls) == 120 and {c.state for c in calls} == {CallState.FINISHED}
    assert events == {"received": 120, "prerun": 120, "postrun": 120}


def test_a_sidecar_whose_worker_died_writes_everything_then_exits(db_url: str, tmp_path: Path) -> None:
    result = drive("orphan", db_url, f"sqlite:///{tmp_path / 'pubsub.db'}", 200)
    wait_for(lambda: len([c for c in calls_and_events(db_url, "orphan")[0] if c.state == CallState.FINISHED]) == 200,
             30, "the orphaned sidecar to write the 200 calls")
    wait_for(lambda: gone(result["sidecar_pid"]), 10, "the orphaned sidecar to exit")


def test_without_a_sidecar_a_process_records_by_itself(db_url: str, tmp_path: Path) -> None:
    result = drive("fallback", db_url, f"sqlite:///{tmp_path / 'pubsub.db'}", 50)
    assert result == {"flushed": True, "seen_after_flush": 50, "stopped": True}
    calls, events = calls_and_events(db_url, "fallback")
    assert {c.state for c in calls} == {CallState.FINISHED} and len(calls) == 50
    assert events == {"received": 50, "prerun": 50, "postrun": 50}


def test_a_worker_whose_sidecar_cannot_start_records_anyway(db_url: str, tmp_path: Path) -> None:
    result = drive("no_sidecar", db_url, f"sqlite:///{tmp_path / 'pubsub.db'}", 40)
    assert result == {"sidecar": False, "flushed": True, "seen_after_flush": 40, "stopped": True}


def test_a_malformed_line_costs_only_itself(db_url: str, tmp_path: Path) -> None:
    """Garbage on the socket (a bug, or another process of the same user) is skipped, the rest recorded."""
    code = (
        "import socket, sys, json\n"
        "from pyfi.worker.sidecar import start_sidecar\n"
        "sc = start_sidecar(sys.argv[1], sys.argv[2], 'tester')\n"
        "s = socket.socket(socket.AF_UNIX); s.connect(sc.address)\n"
        "s.sendall(b'R\\tnot json\\nX\\twhat\\nR\\t[\"__init__\", 0, {}]\\n')\n"
        "good = ['revoked', 1.0e9, {'call_id': 'badlinesok' + '0' * 26, 'name': 'n'}]\n"
        "s.sendall(b'R\\t' + json.dumps(good).encode() + b'\\n')\n"
        "s.close(); print(sc.stop())\n"
    )
    done = subprocess.run([sys.executable, "-c", code, db_url, f"sqlite:///{tmp_path / 'p.db'}"],
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "True", done.stderr
    assert "malformed line" in done.stderr and "Traceback" not in done.stderr
    calls, _ = calls_and_events(db_url, "badlinesok")
    assert [c.state for c in calls] == [CallState.REVOKED]


def test_a_process_waiting_for_a_flush_cuts_the_batching_pause_short(tmp_path: Path) -> None:
    """A busy sidecar pauses BATCH_PAUSE s between reads; a flush (a call about to forward along plugs) must not wait it out."""
    import os
    import socket
    import threading
    import time

    from pyfi.worker.sidecar import BATCH_PAUSE, SidecarServer, _open_wake
    from pyfi.worker.sink import RecordSink, wake_path

    address = str(tmp_path / "sock")
    os.mkfifo(wake_path(address), 0o600)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address)
    listener.listen(1)
    server = SidecarServer(listener, recorder=None, publisher=None, parent=os.getpid(), wake=_open_wake(address))

    began = time.monotonic()
    assert not server.pause()  # nobody waits: the whole pause, so that lines gather
    assert time.monotonic() - began >= BATCH_PAUSE * 0.9

    def answer_one_flush() -> None:  # the sidecar's side of the line protocol, for one flush
        peer, _ = listener.accept()
        token = peer.recv(64).decode().split("\t")[1].strip()
        peer.sendall(f"{token}\t1\n".encode())
        peer.close()

    threading.Thread(target=answer_one_flush, daemon=True).start()
    assert RecordSink(address, "sqlite://", "sqlite://").flush(timeout=5)
    assert server.pause()  # the flush poked the FIFO: the pause is cut short


def test_while_the_database_is_down_a_flush_is_answered_at_once(tmp_path: Path, redis_url: str) -> None:
    """A call that forwards along plugs flushes first: an outage must not cost each such call the full timeout."""
    blocker = tmp_path / "data"
    blocker.write_text("a file where the database directory should be")
    result = drive("outage_flush", f"sqlite:///{blocker}/pyfi.db", redis_url, 5)
    assert result["first"] is False and result["second"] is False
    assert result["took"] < 0.5, f"a flush during an outage took {result['took']:.2f} s"
