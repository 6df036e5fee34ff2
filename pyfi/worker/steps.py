"""The step protocol: a call's steps as the worker's processes tell them to the sidecar.

Why: a call's cost on a busy machine is CPU, and the pool process that runs
the call is the worst place to spend it. So for the two steps every call
takes in a pool process (it starts, it finishes) the process sends one short
line of raw facts, and whoever applies the line (the sidecar; the process
itself when the sidecar is gone) builds the call's records and its pub/sub
messages from them. Building those in the pool process cost about 0.15 ms
per call; a line costs a few microseconds.

The worker's parent process, which dispatches every call, sends nothing: it
stamps the reception time into the request it hands to the child, and the
prerun line carries it. (A line from the parent for each call cost ~0.15 ms
of the parent's CPU under load, ~5% of the throughput, for one message.) So
``received`` is published, with its own date, just before ``running``: a call
waiting in the worker's prefetch buffer shows ``received`` when it starts.

A line is the step's kind and its fields, tab-separated; ``None`` is sent
as an empty field (every field here treats empty as absent):

- ``B  stamp  received  attempt  call_id  name  socket_id  parent  tracking  taskparent  plug_id  sender``:
  prerun (record and publish ``received`` at its time, then ``prerun``/``running``)
- ``E  stamp  attempt  call_id  name  socket_id  resultkey  message``: postrun
  (record it; publish ``postrun`` with the result's JSON text as ``message``)

A field holding a tab or a newline (a call id comes from whoever sent the
call) would break the framing, so such a step goes as ``J  [kind, fields...]``
(JSON) instead. Stamps are epoch seconds, taken when the step happened.
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from pyfi.messaging.pubsub import Channel, channel_name, encode

PRERUN, POSTRUN, AS_JSON = "B", "E", "J"
#: how many fields each kind of step has
FIELDS = {PRERUN: 11, POSTRUN: 7}
KINDS = frozenset(FIELDS) | {AS_JSON}
_EPOCH = dt.datetime(1970, 1, 1)


class StepRecorder(Protocol):
    """What applying a step needs of a recorder (:class:`pyfi.worker.recorder.Recorder`)."""

    def received(self, call_id: str, name: str, socket_id: str | None, parent: str | None = None,
                 tracking: str | None = None, taskparent: str | None = None, plug_id: str | None = None,
                 when: dt.datetime | None = None, *, attempt: int = 0, sender: str | None = None) -> None: ...

    def started(self, call_id: str, when: dt.datetime | None = None, *, name: str = "", attempt: int = 0,
                socket_id: str | None = None) -> None: ...

    def finished(self, call_id: str, resultkey: str | None, when: dt.datetime | None = None, *,
                 name: str = "", attempt: int = 0, socket_id: str | None = None) -> None: ...


def encode_step(kind: str, *fields: Any) -> str:
    """The line for one step (ending in a newline)."""
    text = "\t".join(["" if field is None else str(field) for field in fields])
    if text.count("\t") != len(fields) - 1 or "\n" in text:
        return f"{AS_JSON}\t{json.dumps([kind, *fields], default=str)}\n"
    return f"{kind}\t{text}\n"


def prerun_line(stamp: float, received: float, attempt: int, call_id: str, name: str, socket_id: str | None,
                parent: str | None, tracking: str | None, taskparent: str | None, plug_id: str | None,
                sender: str | None = None) -> str:
    """``encode_step(PRERUN, ...)``, formatted in one go: it runs in every call's path."""
    line = (f"B\t{stamp!r}\t{received!r}\t{attempt}\t{call_id}\t{name}\t{socket_id or ''}\t{parent or ''}"
            f"\t{tracking or ''}\t{taskparent or ''}\t{plug_id or ''}\t{sender or ''}\n")
    if _framed(line, PRERUN):
        return line
    return encode_step(PRERUN, stamp, received, attempt, call_id, name, socket_id, parent, tracking, taskparent, plug_id,
                       sender)


def postrun_line(stamp: float, attempt: int, call_id: str, name: str, socket_id: str | None, resultkey: str | None,
                 message: str) -> str:
    """``encode_step(POSTRUN, ...)``, formatted in one go: it runs in every call's path."""
    line = f"E\t{stamp!r}\t{attempt}\t{call_id}\t{name}\t{socket_id or ''}\t{resultkey or ''}\t{message}\n"
    if _framed(line, POSTRUN):
        return line
    return encode_step(POSTRUN, stamp, attempt, call_id, name, socket_id, resultkey, message)


def _framed(line: str, kind: str) -> bool:
    """True if no field of ``line`` held a tab or a newline."""
    return line.count("\t") == FIELDS[kind] and line.index("\n") == len(line) - 1


def decode_step(kind: str, body: str) -> tuple[str, list[str]]:
    """``(kind, fields)`` of a line; ValueError if it is not a well-formed step."""
    if kind == AS_JSON:
        kind, *values = json.loads(body)
        fields = ["" if value is None else str(value) for value in values]
    else:
        fields = body.split("\t")
    if FIELDS.get(kind) != len(fields):
        raise ValueError(f"not a step: {kind!r} with {len(fields)} fields")
    return kind, fields


def naive_utc(stamp: float) -> dt.datetime:
    """Epoch seconds as the naive UTC datetime the database holds."""
    return _EPOCH + dt.timedelta(seconds=stamp)


def message_date(when: dt.datetime) -> str:
    """A naive UTC time as a message's ``date`` (as :func:`pyfi.messaging.pubsub.utc_now_str` writes it)."""
    return when.isoformat(sep=" ", timespec="microseconds")


class Room(NamedTuple):
    """Where a socket's lifecycle messages go, and the function it runs."""

    room: str
    channel: str
    function: str


@dataclass(frozen=True)
class Steps:
    """Applies steps for one worker: its module and, per socket id, the socket's :class:`Room`."""

    module: str
    sockets: Mapping[str, Room]

    @classmethod
    def of(cls, spec: Any) -> "Steps":
        """The steps of a :class:`~pyfi.worker.spec.WorkerSpec`'s sockets."""
        rooms = {s.id: spec.room_for(s) for s in spec.sockets}
        return cls(spec.module, {s.id: Room(rooms[s.id], channel_name(rooms[s.id], Channel.TASK), s.function)
                                 for s in spec.sockets})

    def apply(self, kind: str, fields: Sequence[str], recorder: StepRecorder,
              outbox: list[tuple[float, str, str]]) -> None:
        """Record the step and add its messages to ``outbox`` as ``(stamp, channel, payload)``."""
        stamp = float(fields[0])
        when = naive_utc(stamp)
        if kind == PRERUN:
            _, received, attempt, call_id, name, socket_id, parent, tracking, taskparent, plug_id, sender = fields
            received_stamp = float(received)
            received_when = naive_utc(received_stamp)
            recorder.received(call_id, name, socket_id or None, parent or None, tracking or None, taskparent or None,
                              plug_id or None, when=received_when, sender=sender or None)
            recorder.started(call_id, when, name=name, attempt=int(attempt), socket_id=socket_id or None)
            self._state(outbox, received_stamp, received_when, socket_id, "received", call_id)
            self._state(outbox, stamp, when, socket_id, "running", call_id)
        else:
            _, attempt, call_id, name, socket_id, resultkey, message = fields
            recorder.finished(call_id, resultkey or None, when, name=name, attempt=int(attempt), socket_id=socket_id or None)
            room = self.sockets.get(socket_id)
            if room is None:  # a call of no socket this worker knows: nobody listens for it
                return
            # build_message(room.room, "postrun", date=..., module=..., ...), written out: it runs for every call
            outbox.append((stamp, room.channel, encode({
                "channel": "task", "state": "postrun", "date": message_date(when), "room": room.room,
                "module": self.module, "task": room.function, "resultkey": resultkey or None, "message": message,
                "call": call_id})))

    def _state(self, outbox: list[tuple[float, str, str]], stamp: float, when: dt.datetime, socket_id: str,
               state: str, call_id: str) -> None:
        """A message naming the state and its call: ``encode(build_message(room, state, date=..., call=...))``."""
        room = self.sockets.get(socket_id)
        if room is not None:
            outbox.append((stamp, room.channel, f'{{"channel":"task","state":"{state}","date":"{message_date(when)}",'
                                                f'"room":{encode(room.room)},"call":{encode(call_id)}}}'))
