"""The lifecycle pub/sub protocol against real Redis and a real SQLite file.

Every transport test runs on both implementations. Channel names carry a
random prefix so concurrent test runs sharing one Redis do not see each
other's traffic.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import multiprocessing
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from pyfi.errors import BackendUnavailable, InvalidInput
from pyfi.messaging import pubsub
from pyfi.messaging.pubsub import (
    Channel,
    Message,
    Subscriber,
    build_message,
    channel_name,
    decode,
    encode,
    pattern_for,
    publisher_for,
    room_name,
    sqlite_backend,
    subscriber_for,
)

DEADLINE = 5.0

PUBLISH_SCRIPT = """
import sys
from pyfi.messaging.pubsub import build_message, publisher_for
url, channel, room, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
with publisher_for(url) as pub:
    for seq in range(count):
        assert pub.publish(channel, build_message(room, "received", seq=seq))
"""


@pytest.fixture(params=["sqlite", "redis"])
def url(request, tmp_path: Path) -> str:
    if request.param == "redis":
        return request.getfixturevalue("redis_url")
    return f"sqlite:///{tmp_path}/pubsub.db"


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


def collect(sub: Subscriber, count: int, deadline: float = DEADLINE) -> list[Message]:
    """Up to ``count`` messages, giving up at ``deadline`` seconds from now."""
    end = time.monotonic() + deadline
    got: list[Message] = []
    while len(got) < count:
        left = end - time.monotonic()
        if left <= 0:
            break
        message = sub.get_message(timeout=left)
        if message is not None:
            got.append(message)
    return got


def publish_from_subprocess(url: str, channel: str, room: str, count: int) -> None:
    subprocess.run(
        [sys.executable, "-c", PUBLISH_SCRIPT, url, channel, room, str(count)], check=True, timeout=30
    )


def _publish_in_child(publisher: pubsub.Publisher, channel: str, room: str) -> None:
    ok = publisher.publish(channel, build_message(room, "prerun", origin="child"))
    sys.exit(0 if ok else 3)


# ---------------------------------------------------------------- protocol


def test_channel_naming() -> None:
    room = room_name("pyfi.queue1", "proc1")
    assert room == "pyfi.queue1.proc1"
    assert channel_name(room, Channel.TASK) == "pyfi.queue1.proc1.task"
    assert channel_name(room, Channel.LOG) == "pyfi.queue1.proc1.log"
    assert channel_name(room) == "pyfi.queue1.proc1.task"
    assert pattern_for("pyfi.queue1.*", "log") == "pyfi.queue1.*.log"
    assert Channel("task") is Channel.TASK and str(Channel.LOG) == "log"


def test_message_fields() -> None:
    msg = build_message("pyfi.queue1.proc1", "received")
    assert set(msg) == {"channel", "state", "date", "room"}
    assert msg["channel"] == "task" and msg["state"] == "received" and msg["room"] == "pyfi.queue1.proc1"
    when = dt.datetime.strptime(msg["date"], "%Y-%m-%d %H:%M:%S.%f")
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    assert abs((now - when).total_seconds()) < 5
    assert all(type(v) is str for v in msg.values())  # plain str, not Enum members


def test_postrun_message_carries_result_fields() -> None:
    msg = build_message(
        "pyfi.queue1.proc1",
        "postrun",
        module="pyfi.processors.sample",
        task="do_something",
        resultkey="celery-task-meta-b3feb181",
        message=json.dumps("Message:Hello World!"),
    )
    assert msg["module"] == "pyfi.processors.sample"
    assert msg["task"] == "do_something"
    assert msg["resultkey"] == "celery-task-meta-b3feb181"
    assert json.loads(msg["message"]) == "Message:Hello World!"
    bare = build_message("r", "postrun")
    assert {k: bare[k] for k in ("module", "task", "resultkey", "message")} == dict.fromkeys(
        ("module", "task", "resultkey", "message")
    )


def test_log_channel_message_and_enum_state() -> None:
    from pyfi.enums import EventName

    msg = build_message("q.p", EventName.PRERUN, Channel.LOG, message="hello")
    assert msg["channel"] == "log" and msg["state"] == "prerun" and msg["message"] == "hello"
    assert json.loads(encode(msg)) == msg


def test_encode_is_json_roundtrip() -> None:
    msg = build_message("q.p", "received", call="abc")
    text = encode(msg)
    assert json.loads(text) == msg
    assert decode(text.encode()) == msg


def test_unknown_scheme_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        publisher_for("amqp://localhost")
    with pytest.raises(InvalidInput):
        subscriber_for("memory://", "x.task")
    with pytest.raises(InvalidInput):
        publisher_for("sqlite://")


# ---------------------------------------------------------------- transports


def test_publish_then_receive_in_order_across_processes(url: str, prefix: str) -> None:
    room = f"{prefix}.queue1.proc1"
    channel = channel_name(room, Channel.TASK)
    with subscriber_for(url, pattern_for(room, Channel.TASK)) as sub:
        publish_from_subprocess(url, channel, room, 20)
        got = collect(sub, 20)
    assert [m.data["seq"] for m in got] == list(range(20))
    first = got[0]
    assert first.channel == channel and first.pattern == channel
    assert first.data["room"] == room and first.data["channel"] == "task" and first.data["state"] == "received"
    assert first.as_dict()["type"] == "pmessage"


def test_publisher_reconnects_after_fork(url: str, prefix: str) -> None:
    room = f"{prefix}.q.p"
    channel = channel_name(room)
    publisher = publisher_for(url)
    with subscriber_for(url, channel) as sub:
        assert publisher.publish(channel, build_message(room, "received", origin="parent"))
        child = multiprocessing.get_context("fork").Process(target=_publish_in_child, args=(publisher, channel, room))
        child.start()
        child.join(timeout=20)
        assert child.exitcode == 0
        assert publisher.publish(channel, build_message(room, "postrun", origin="parent"))
        got = collect(sub, 3)
    publisher.close()
    assert [m.data["origin"] for m in got] == ["parent", "child", "parent"]


def test_exact_pattern_ignores_other_channels(url: str, prefix: str) -> None:
    room = f"{prefix}.a.b"
    with subscriber_for(url, f"{room}.task") as sub, publisher_for(url) as pub:
        assert pub.publish(f"{room}.log", build_message(room, "stdout", Channel.LOG, message="line"))
        assert pub.publish(f"{room}x.task", build_message(room, "received"))
        assert pub.publish(f"{room}.task", build_message(room, "received"))
        got = collect(sub, 1)
        assert sub.get_message(timeout=0.3) is None
    assert [(m.channel, m.data["channel"]) for m in got] == [(f"{room}.task", "task")]


def test_glob_patterns(url: str, prefix: str) -> None:
    with subscriber_for(url, [pattern_for(f"{prefix}.q.*", Channel.TASK), f"{prefix}.other.p?.log"]) as sub:
        with publisher_for(url) as pub:
            for channel in (
                f"{prefix}.q.p1.task",
                f"{prefix}.q.p1.log",
                f"{prefix}.q.p2.task",
                f"{prefix}.other.p3.log",
                f"{prefix}.other.p33.log",
                f"{prefix}.elsewhere.p1.task",
            ):
                assert pub.publish(channel, build_message(channel.rsplit(".", 1)[0], "received"))
            got = collect(sub, 3)
            assert sub.get_message(timeout=0.3) is None
    assert [m.channel for m in got] == [f"{prefix}.q.p1.task", f"{prefix}.q.p2.task", f"{prefix}.other.p3.log"]
    assert [m.pattern for m in got] == [f"{prefix}.q.*.task"] * 2 + [f"{prefix}.other.p?.log"]


def test_message_before_subscribe_is_not_delivered(url: str, prefix: str) -> None:
    channel = f"{prefix}.q.p.task"
    with publisher_for(url) as pub:
        assert pub.publish(channel, build_message("q.p", "received", seq="early"))
        with subscriber_for(url, channel) as sub:
            assert pub.publish(channel, build_message("q.p", "received", seq="late"))
            got = collect(sub, 1)
            assert sub.get_message(timeout=0.2) is None
    assert [m.data["seq"] for m in got] == ["late"]


def test_listen_stops_after_idle_timeout(url: str, prefix: str) -> None:
    channel = f"{prefix}.q.p.task"
    with subscriber_for(url, channel) as sub, publisher_for(url) as pub:
        for seq in range(3):
            pub.publish(channel, build_message("q.p", "received", seq=seq))
        start = time.monotonic()
        got = [m.data["seq"] for m in sub.listen(timeout=0.5)]
    assert got == [0, 1, 2]
    assert time.monotonic() - start < 3


# ---------------------------------------------------------------- failures


def test_dead_redis_publisher_drops_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    pub = publisher_for("redis://localhost:1/0")
    with caplog.at_level(logging.WARNING, logger="pyfi.messaging.pubsub"):
        start = time.monotonic()
        assert pub.publish("a.b.task", build_message("a.b", "received")) is False
        assert pub.publish("a.b.task", build_message("a.b", "prerun")) is False
        assert time.monotonic() - start < 5
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "unavailable" in warnings[0].getMessage()
    pub.close()


def test_unwritable_sqlite_publisher_drops(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    pub = publisher_for(f"sqlite:///{blocker}/pubsub.db")
    assert pub.publish("a.b.task", build_message("a.b", "received")) is False


def test_dead_redis_subscriber_raises_backend_unavailable() -> None:
    with pytest.raises(BackendUnavailable):
        subscriber_for("redis://localhost:1/0", "a.b.task")


# ---------------------------------------------------------------- sqlite details


def test_sqlite_file_is_wal_and_pruned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "home" / "pubsub.db"
    url = f"sqlite:///{path}"
    with publisher_for(url) as pub:
        for seq in range(5):
            assert pub.publish("q.p.task", build_message("q.p", "received", seq=seq))
        monkeypatch.setattr(sqlite_backend, "RETENTION", 0.0)
        pub._next_prune = 0.0  # force the occasional prune to run now
        assert pub.publish("q.p.task", build_message("q.p", "received", seq=5))
    conn = sqlite3.connect(str(path))
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        count = conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    finally:
        conn.close()
    assert count <= 1


def test_sqlite_subscriber_skips_non_json_rows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/pubsub.db"
    with subscriber_for(url, "q.p.task") as sub, publisher_for(url) as pub:
        conn = sqlite3.connect(str(tmp_path / "pubsub.db"))
        conn.execute(
            "INSERT INTO messages (channel, data, created) VALUES (?, ?, ?)", ("q.p.task", "not json", time.time())
        )
        conn.commit()
        conn.close()
        assert pub.publish("q.p.task", build_message("q.p", "received", seq="ok"))
        got = collect(sub, 1)
    assert [m.data["seq"] for m in got] == ["ok"]


def test_encode_keeps_text_orjson_cannot_write_and_writes_other_values_as_text() -> None:
    """A lone surrogate (json.loads makes them from \\ud800) still encodes; a datetime is its str(), as before."""
    import datetime as dt

    msg = build_message("q.p", "received", call="\ud800", when=dt.datetime(2026, 1, 2, 3, 4, 5))
    assert json.loads(encode(msg)) == {**msg, "when": "2026-01-02 03:04:05"}


def test_a_ring_wakes_a_sleeping_agent_at_once(url: str) -> None:
    """`pyfi proc ...` rings after its commit; an agent sleeping on its doorbell reconciles now, not at its tick."""
    from pyfi.messaging.doorbell import Doorbell, ring

    doorbell = Doorbell(url)
    try:
        began = time.monotonic()
        assert not doorbell.wait(0.3)  # nobody rang: the whole timeout
        assert time.monotonic() - began >= 0.25
        assert ring(url, "p1") and ring(url, "p1")
        began = time.monotonic()
        assert doorbell.wait(10)
        assert time.monotonic() - began < 2
        assert not doorbell.wait(0.05), "rings that came together wake once"
    finally:
        doorbell.close()


def test_a_doorbell_without_pubsub_sleeps_its_timeout(tmp_path: Path) -> None:
    from pyfi.messaging.doorbell import Doorbell, ring

    doorbell = Doorbell("redis://localhost:1/0")  # nothing listens there
    began = time.monotonic()
    assert not doorbell.wait(0.2)
    assert time.monotonic() - began >= 0.15
    assert not ring("redis://localhost:1/0", "p1")  # a hint only: it does not raise
