"""The lifecycle pub/sub protocol: channel names, message schema, transports.

Workers publish one JSON message per lifecycle step of a call (and per log
line) on ``<queue>.<processor>.<channel>``, e.g. ``pyfi.queue1.proc1.task``;
``pyfi listen`` subscribes to a glob pattern over those names. The "room" of
a message is ``<queue>.<processor>`` (``pyfi.queue1.proc1``).

Pub/sub is a *live view*: a message published while nobody listens is gone,
and a publisher whose backend is down logs a warning and drops the message
instead of raising. The database is the record of calls and events.

Two transports, chosen by URL scheme (:func:`publisher_for`,
:func:`subscriber_for`):

``redis://`` / ``rediss://``
    Redis PUBLISH and PSUBSCRIBE.
``sqlite:///path/to/pubsub.db``
    A server-free stand-in for processes on one machine sharing a directory
    (the embedded default): publish inserts a row, subscribers poll for rows
    newer than the newest one present when they subscribed. Patterns are
    matched with :func:`fnmatch.fnmatchcase` (``*``, ``?``, ``[seq]``,
    ``[!seq]``), close to Redis's glob syntax.

Messages are always JSON; nothing received is ever unpickled.
"""
from __future__ import annotations

from typing import Iterable

from pyfi.errors import InvalidInput
from pyfi.messaging.pubsub.base import Publisher, Subscriber, safe_url
from pyfi.messaging.pubsub.protocol import (
    POSTRUN_FIELDS,
    REDIS_SCHEMES,
    SQLITE_PREFIX,
    Channel,
    Message,
    build_message,
    channel_name,
    decode,
    encode,
    pattern_for,
    room_name,
    utc_now_str,
)
from pyfi.messaging.pubsub.redis_backend import RedisPublisher, RedisSubscriber
from pyfi.messaging.pubsub.sqlite_backend import (
    SqlitePublisher,
    SqliteSubscriber,
    sqlite_path,
)

__all__ = [
    "POSTRUN_FIELDS", "Channel", "Message", "Publisher", "RedisPublisher", "RedisSubscriber", "SqlitePublisher",
    "SqliteSubscriber", "Subscriber", "build_message", "channel_name", "decode", "encode", "pattern_for",
    "publisher_for", "room_name", "sqlite_path", "subscriber_for", "utc_now_str",
]


def _scheme_error(url: str) -> InvalidInput:
    return InvalidInput(
        f"unsupported pub/sub URL {safe_url(url)!r}",
        "use redis://host:port/db, rediss://... or sqlite:///path/to/pubsub.db",
    )


def publisher_for(url: str) -> Publisher:
    """A publisher for ``url`` (redis://, rediss:// or sqlite:///). Connects lazily."""
    if url.startswith(REDIS_SCHEMES):
        return RedisPublisher(url)
    if url.startswith(SQLITE_PREFIX):
        return SqlitePublisher(url)
    raise _scheme_error(url)


def subscriber_for(url: str, patterns: str | Iterable[str]) -> Subscriber:
    """A subscriber to ``patterns`` (one glob or several) on ``url``.

    Subscribed on return: anything published afterwards is delivered.
    Raises BackendUnavailable when the backend cannot be reached. A channel
    matching several patterns arrives once per pattern on Redis (PSUBSCRIBE
    semantics) but once, under the first matching pattern, on SQLite; give
    non-overlapping patterns.
    """
    if isinstance(patterns, str):
        patterns = [patterns]
    if url.startswith(REDIS_SCHEMES):
        return RedisSubscriber(url, patterns)
    if url.startswith(SQLITE_PREFIX):
        return SqliteSubscriber(url, patterns)
    raise _scheme_error(url)
