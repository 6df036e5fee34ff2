"""The step protocol: lines the worker's processes send, records and messages the sidecar makes of them."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from pyfi.messaging.pubsub import build_message, encode
from pyfi.messaging.pubsub.redis_backend import pack_publish
from pyfi.worker.steps import (AS_JSON, POSTRUN, PRERUN, Room, Steps, decode_step, encode_step, postrun_line,
                               prerun_line)

SOCKET = "0b8e7c4e-socket"
STEPS = Steps("sample", {SOCKET: Room("q1.proc1", "q1.proc1.task", "do_something")})
STAMP = 1_790_000_000.25


class Calls:
    """A recorder that remembers what it was asked to record."""

    def __init__(self) -> None:
        self.seen: list[tuple] = []

    def received(self, *args, **kwargs) -> None:
        self.seen.append(("received", args, kwargs))

    def started(self, *args, **kwargs) -> None:
        self.seen.append(("started", args, kwargs))

    def finished(self, *args, **kwargs) -> None:
        self.seen.append(("finished", args, kwargs))


def apply(line: str) -> tuple[Calls, list[tuple[float, str, str]]]:
    kind, _, body = line.rstrip("\n").partition("\t")
    recorder, outbox = Calls(), []
    STEPS.apply(*decode_step(kind, body), recorder, outbox)
    return recorder, outbox


def test_prerun_records_and_publishes_received_at_its_time_then_running() -> None:
    line = encode_step(PRERUN, STAMP, STAMP - 0.5, 1, "call-1", "sample.do_something", SOCKET, None, "root-1", None, "plug-1",
                       "ann")
    assert line.startswith("B\t") and line.count("\n") == 1
    recorder, outbox = apply(line)
    (_, received, received_kw), (_, started, started_kw) = recorder.seen
    assert received == ("call-1", "sample.do_something", SOCKET, None, "root-1", None, "plug-1")
    assert received_kw["when"] == dt.datetime(2026, 9, 21, 14, 13, 19, 750000) and received_kw["sender"] == "ann"
    assert started == ("call-1", dt.datetime(2026, 9, 21, 14, 13, 20, 250000))
    assert started_kw == {"name": "sample.do_something", "attempt": 1, "socket_id": SOCKET}
    assert outbox == [
        (STAMP - 0.5, "q1.proc1.task",
         encode(build_message("q1.proc1", "received", date="2026-09-21 14:13:19.750000", call="call-1"))),
        (STAMP, "q1.proc1.task", encode(build_message("q1.proc1", "running", date="2026-09-21 14:13:20.250000", call="call-1"))),
    ]


def test_postrun_message_has_the_original_documentations_fields() -> None:
    recorder, outbox = apply(encode_step(POSTRUN, STAMP, 0, "call-1", "sample.do_something", SOCKET, "key-1", '"done"'))
    assert recorder.seen == [("finished", ("call-1", "key-1", dt.datetime(2026, 9, 21, 14, 13, 20, 250000)),
                              {"name": "sample.do_something", "attempt": 0, "socket_id": SOCKET})]
    message = json.loads(outbox[0][2])
    assert message == {"channel": "task", "state": "postrun", "date": "2026-09-21 14:13:20.250000", "room": "q1.proc1",
                       "module": "sample", "task": "do_something", "resultkey": "key-1", "message": '"done"',
                       "call": "call-1"}


def test_the_parent_sends_no_step() -> None:
    """The parent's line for each call cost ~5% of the throughput: ``received`` travels with prerun."""
    with pytest.raises(ValueError):
        decode_step("A", f"{STAMP}\t{SOCKET}")


def test_a_call_of_an_unknown_socket_is_recorded_but_not_published() -> None:
    recorder, outbox = apply(encode_step(POSTRUN, STAMP, 0, "call-1", "m.f", "other-socket", "", '"x"'))
    assert recorder.seen[0][1][:2] == ("call-1", None) and outbox == []


@pytest.mark.parametrize("call_id", ["evil\tid", "evil\nid", "tab\tand\nnewline"])
def test_fields_that_would_break_the_framing_go_as_json(call_id: str) -> None:
    line = encode_step(POSTRUN, STAMP, 0, call_id, "m.f", SOCKET, "key", '"x"')
    assert line.startswith(f"{AS_JSON}\t") and line.count("\n") == 1 and line.endswith("\n")
    recorder, _ = apply(line)
    assert recorder.seen[0][1][0] == call_id


@pytest.mark.parametrize("line", ["B\t1.0\tonly-three", "E\tnot-a-number\t0\tc\tn\ts\tk\tm", 'J\t["Z", 1]', "J\t{oops"])
def test_malformed_steps_raise_value_error(line: str) -> None:
    kind, _, body = line.partition("\t")
    with pytest.raises(ValueError):
        STEPS.apply(*decode_step(kind, body), Calls(), [])


def test_pack_publish_is_what_redis_py_would_send() -> None:
    from redis.connection import Connection

    items = [("q.p.task", '{"state": "running", "x": "\u00e9"}'), ("q.p.log", "x" * 70_000)]
    expected = b"".join(Connection().pack_commands([("PUBLISH", channel, payload) for channel, payload in items]))
    assert pack_publish(items) == expected


@pytest.mark.parametrize("optional", [None, "x-1"])
def test_the_fast_line_builders_write_what_encode_step_writes(optional) -> None:
    prerun = (STAMP, STAMP - 0.5, 2, "call-1", "m.f", SOCKET, optional, "root-1", optional, optional, optional)
    assert prerun_line(*prerun) == encode_step(PRERUN, *prerun)
    postrun = (STAMP, 0, "call-1", "m.f", optional, optional, '{"a": [1, 2]}')
    assert postrun_line(*postrun) == encode_step(POSTRUN, *postrun)


def test_the_fast_line_builders_fall_back_to_json_for_tabs_and_newlines() -> None:
    assert prerun_line(STAMP, STAMP, 0, "a\tb", "m.f", SOCKET, None, None, None, "p\n", "ann") == \
        encode_step(PRERUN, STAMP, STAMP, 0, "a\tb", "m.f", SOCKET, None, None, None, "p\n", "ann")
    line = postrun_line(STAMP, 0, "call\n1", "m.f", SOCKET, "key", '"x"')
    assert line.startswith(f"{AS_JSON}\t")
    assert apply(line)[0].seen[0][1][0] == "call\n1"


def test_database_rows_encode_as_the_stdlib_would_and_text_the_database_refuses_is_made_storable() -> None:
    from pyfi.enums import CallState
    from pyfi.worker.bulk import encode_rows

    started = dt.datetime(2026, 1, 2, 3, 4, 5, 6)
    rows = [{"id": "c1", "state": CallState.FINISHED, "started": started, "note": "é\t\"x\""}]
    expected = [{"id": "c1", "state": "finished", "started": started.isoformat(), "note": "é\t\"x\""}]
    assert json.loads(encode_rows(rows)) == expected
    odd = [{"id": "c\ud800", "note": "a\x00b", "error": "caf\udce9 é", "attempt": 2}]
    assert json.loads(encode_rows(odd)) == [{"id": "c\\ud800", "note": "a\\x00b", "error": "caf\\udce9 é", "attempt": 2}]


@pytest.mark.parametrize("call_id", ["3f1d5c2e-0000-4000-8000-00000000000a", "caf\u00e9", ""])
def test_event_ids_are_uuid5_of_call_event_and_attempt(call_id: str) -> None:
    """Event ids are fixed forever (they make a duplicate event a no-op): the fast builder must match uuid5."""
    import uuid

    from pyfi.enums import EventName
    from pyfi.worker.rows import EVENT_NAMESPACE, event_id_for

    for event in EventName:
        for attempt in (0, 1, 11):
            assert event_id_for(call_id, event, attempt) == str(uuid.uuid5(EVENT_NAMESPACE, f"{call_id}/{event.value}/{attempt}"))
