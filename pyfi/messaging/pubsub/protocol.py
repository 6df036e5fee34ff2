"""Channel names and the JSON message schema of lifecycle and log messages."""
from __future__ import annotations

import datetime as _dt
import json
import logging
from dataclasses import dataclass, field
from typing import Any

import orjson

from pyfi.enums import StrEnum

log = logging.getLogger(__name__)


REDIS_SCHEMES = ("redis://", "rediss://")
SQLITE_PREFIX = "sqlite:///"

#: How long a publisher stays quiet (drops messages without trying) after its
#: backend failed, so a dead server cannot slow every call down.
FAILURE_BACKOFF = 5.0



class Channel(StrEnum):
    """The last component of a pub/sub channel name."""

    TASK = "task"  # lifecycle of calls: received, prerun, postrun, failure...
    LOG = "log"  # stdout / stderr / log lines of a worker


# --------------------------------------------------------------------------
# naming and the message schema


def room_name(queue: str, processor: str) -> str:
    """``<queue>.<processor>``: the room of a processor on a queue."""
    return f"{queue}.{processor}"


def channel_name(room: str, channel: Channel | str = Channel.TASK) -> str:
    """``<room>.<channel>``, e.g. ``pyfi.queue1.proc1.task``."""
    return f"{room}.{channel}"


def pattern_for(name: str, channel: Channel | str = Channel.TASK) -> str:
    """The subscription pattern for ``pyfi listen --name NAME --channel CHANNEL``.

    ``name`` is a room and may itself contain glob characters
    (``pyfi.queue1.*``).
    """
    return channel_name(name, channel)


def utc_now_str() -> str:
    """Naive UTC time as ``2021-09-13 19:37:20.094443`` (always with microseconds)."""
    now = _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None)
    return now.isoformat(sep=" ", timespec="microseconds")


POSTRUN_FIELDS = ("module", "task", "resultkey", "message")


def build_message(
    room: str,
    state: str,
    channel: Channel | str = Channel.TASK,
    *,
    date: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A lifecycle (or log) message as ``pyfi listen`` shows it in the original pyfi documentation.

    Always: ``channel``, ``state``, ``date``, ``room``. Extra ``fields`` whose
    value is not None are added (e.g. ``module``, ``task``, ``resultkey``,
    ``message``, ``call``); a ``postrun`` message always carries the four
    POSTRUN_FIELDS, None when unknown. For the log channel, ``state`` names
    the stream (``stdout``, ``stderr``, ``log``) and ``message`` the line.
    Values must be JSON-serialisable.
    """
    msg: dict[str, Any] = {
        "channel": str(channel),
        "state": str(state),
        "date": date or utc_now_str(),
        "room": room,
    }
    if str(state) == "postrun":
        msg.update({key: None for key in POSTRUN_FIELDS})
    msg.update({key: value for key, value in fields.items() if value is not None})
    return msg


_ENCODER = json.JSONEncoder(default=str)  # one instance: json.dumps(default=...) builds one per call
#: what orjson would write its own way is handed to ``default=str``, as the stdlib encoder does
_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def encode(message: Any) -> str:
    """JSON text of a message, or of any JSON value (never pickle); compact, UTF-8 as is.

    orjson: a worker encodes three messages per call, and the stdlib encoder
    took several times as long.
    """
    try:
        return orjson.dumps(message, default=str, option=_ORJSON_OPTIONS).decode()
    except orjson.JSONEncodeError:  # e.g. a lone surrogate, which only the stdlib escapes
        return _ENCODER.encode(message)


def decode(data: str | bytes) -> Any:
    """The JSON value of a received payload."""
    if isinstance(data, bytes):
        data = data.decode("utf-8")
    return json.loads(data)


@dataclass(frozen=True)
class Message:
    """One received message: the pattern that matched, the channel, the data."""

    pattern: str
    channel: str
    data: Any = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The shape ``pyfi listen`` prints (like redis-py's pmessage dicts)."""
        return {"type": "pmessage", "pattern": self.pattern, "channel": self.channel, "data": self.data}


# --------------------------------------------------------------------------
# abstractions


