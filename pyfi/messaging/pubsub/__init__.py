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

from typing import Any, Iterable

from pyfi.errors import InvalidInput
from pyfi.messaging.pubsub.base import Publisher, Subscriber, safe_url
from pyfi.messaging.pubsub.network import NetworkPublisher, NetworkSubscriber
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


def publisher_for(url: str, namespace: str = "", signer: Any = None) -> Publisher | NetworkPublisher:
    """A publisher for ``url`` (redis://, rediss:// or sqlite:///). Connects lazily.

    ``namespace``: the network's channel prefix; ``signer``: a worker's key, which
    seals what it publishes (:mod:`pyfi.messaging.pubsub.network`).
    """
    if url.startswith(REDIS_SCHEMES):
        publisher: Publisher = RedisPublisher(url)
    elif url.startswith(SQLITE_PREFIX):
        publisher = SqlitePublisher(url)
    else:
        raise _scheme_error(url)
    return NetworkPublisher(publisher, namespace, signer) if namespace or signer is not None else publisher


def subscriber_for(url: str, patterns: str | Iterable[str], namespace: str = "") -> Subscriber | NetworkSubscriber:
    """A subscriber to ``patterns`` (one glob or several) on ``url``.

    Subscribed on return: anything published afterwards is delivered.
    Raises BackendUnavailable when the backend cannot be reached. A channel
    matching several patterns arrives once per pattern on Redis (PSUBSCRIBE
    semantics) but once, under the first matching pattern, on SQLite; give
    non-overlapping patterns. ``namespace``: the network's channel prefix,
    which the channels it delivers no longer show.
    """
    patterns = [namespace + pattern for pattern in ([patterns] if isinstance(patterns, str) else patterns)]
    if url.startswith(REDIS_SCHEMES):
        subscriber: Subscriber = RedisSubscriber(url, patterns)
    elif url.startswith(SQLITE_PREFIX):
        subscriber = SqliteSubscriber(url, patterns)
    else:
        raise _scheme_error(url)
    return NetworkSubscriber(subscriber, namespace) if namespace else subscriber
