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

import abc
import collections
import datetime as _dt
import fnmatch
import json
import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from pyfi.enums import StrEnum
from pyfi.errors import BackendUnavailable, InvalidInput

log = logging.getLogger(__name__)

REDIS_SCHEMES = ("redis://", "rediss://")
SQLITE_PREFIX = "sqlite:///"

#: How long a publisher stays quiet (drops messages without trying) after its
#: backend failed, so a dead server cannot slow every call down.
FAILURE_BACKOFF = 5.0
#: SQLite transport: poll interval, row retention and how often to prune.
POLL_INTERVAL = 0.05
RETENTION = 300.0
PRUNE_EVERY = 30.0
BUSY_TIMEOUT = 2.0
#: How long a Redis subscriber waits for the server to confirm PSUBSCRIBE.
SUBSCRIBE_TIMEOUT = 5.0


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
    """A lifecycle (or log) message as the seed's ``pyfi listen`` shows it.

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


def encode(message: Mapping[str, Any]) -> str:
    """JSON text of a message (never pickle)."""
    return json.dumps(message, default=str)


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


class Publisher(abc.ABC):
    """Publishes messages; never raises because the backend is down.

    Safe to create before a fork: connections are made lazily, per process.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._pid: int | None = None
        self._down_until = 0.0
        self._warned = False

    def publish(self, channel: str, message: Mapping[str, Any]) -> bool:
        """Send ``message`` on ``channel``; True if the backend accepted it.

        On a backend error: log a warning (once per outage), drop the message,
        and skip publishing for FAILURE_BACKOFF seconds.
        """
        if time.monotonic() < self._down_until:
            return False
        payload = encode(message)
        try:
            self._check_pid()
            self._send(channel, payload)
        except self._backend_errors() as exc:
            self._failed(exc)
            return False
        if self._warned:
            log.info("pub/sub %s reachable again", _safe_url(self.url))
            self._warned = False
        return True

    def close(self) -> None:
        """Release the connection of this process (if any); never raises because the backend is down."""
        if self._pid == os.getpid():
            try:
                self._disconnect()
            except self._backend_errors():
                log.debug("error closing pub/sub connection", exc_info=True)
        self._pid = None

    def __enter__(self) -> "Publisher":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _check_pid(self) -> None:
        """Forget connections inherited through fork; reconnect in this process."""
        pid = os.getpid()
        if self._pid != pid:
            self._forget()
            self._pid = pid

    def _failed(self, exc: BaseException) -> None:
        self._down_until = time.monotonic() + FAILURE_BACKOFF
        if not self._warned:
            log.warning("pub/sub %s unavailable, dropping messages: %s", _safe_url(self.url), exc)
            self._warned = True
        else:
            log.debug("pub/sub still unavailable: %s", exc)
        if self._pid == os.getpid():
            try:
                self._disconnect()
            except self._backend_errors():
                log.debug("error closing pub/sub connection", exc_info=True)
        self._pid = None

    @abc.abstractmethod
    def _backend_errors(self) -> tuple[type[BaseException], ...]:
        """The exceptions meaning "backend unavailable": logged and dropped."""

    @abc.abstractmethod
    def _send(self, channel: str, payload: str) -> None:
        """Deliver one JSON payload."""

    @abc.abstractmethod
    def _forget(self) -> None:
        """Drop references to connections without closing them (after fork)."""

    @abc.abstractmethod
    def _disconnect(self) -> None:
        """Close this process's connection."""


class Subscriber(abc.ABC):
    """Receives messages whose channel matches one of ``patterns``.

    Only messages published after the subscriber was created are delivered.
    Use in the process that created it; raises BackendUnavailable when the
    backend cannot be reached.
    """

    def __init__(self, url: str, patterns: Iterable[str]) -> None:
        self.url = url
        self.patterns = tuple(patterns)
        if not self.patterns:
            raise InvalidInput("a subscriber needs at least one channel pattern")

    @abc.abstractmethod
    def get_message(self, timeout: float | None = None) -> Message | None:
        """The next message, waiting up to ``timeout`` seconds (None: forever)."""

    def listen(self, timeout: float | None = None) -> Iterator[Message]:
        """Yield messages as they come; stop after ``timeout`` idle seconds (None: never)."""
        while True:
            message = self.get_message(timeout)
            if message is None:
                return
            yield message

    @abc.abstractmethod
    def close(self) -> None:
        """Unsubscribe and release the connection."""

    def __enter__(self) -> "Subscriber":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _safe_url(url: str) -> str:
    """``url`` without a password, for log lines."""
    head, sep, tail = url.partition("@")
    if not sep:
        return url
    scheme, _, _creds = head.partition("://")
    return f"{scheme}://***@{tail}"


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


# --------------------------------------------------------------------------
# Redis


def _redis_client(url: str) -> Any:
    import redis

    return redis.Redis(connection_pool=_redis_pool(url))


def _redis_pool(url: str) -> Any:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    # Short timeouts and a single retry: a dead server must cost little.
    return redis.ConnectionPool.from_url(
        url,
        socket_connect_timeout=2,
        socket_timeout=5,
        retry=Retry(NoBackoff(), 1),
        decode_responses=True,
    )


#: Replies a Redis publisher may leave unread before it reads them all.
MAX_UNREAD = 64


class RedisPublisher(Publisher):
    """PUBLISH on a Redis server, pipelined.

    Each message is written to the connection at once, but its reply (the
    number of receivers) is read later, in bulk, when :data:`MAX_UNREAD`
    replies are waiting or on :meth:`close`. A publish thus costs one socket
    write instead of a round trip with the server, which matters on a
    worker's hot path (three messages per call). Redis handles a
    connection's commands in order, so messages keep their order; ``True``
    means the message was handed to the server. A broken connection or an
    error reply counts as the backend being unavailable.
    """

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._pool: Any = None
        self._conn: Any = None
        self._unread = 0
        self._lock = threading.Lock()

    def _backend_errors(self) -> tuple[type[BaseException], ...]:
        import redis

        return (redis.RedisError, OSError)

    def _send(self, channel: str, payload: str) -> None:
        with self._lock:
            if self._conn is None:
                self._pool = _redis_pool(self.url)
                self._conn = self._pool.get_connection()
                self._unread = 0
            if self._unread >= MAX_UNREAD:
                self._read_replies(self._conn)
            self._conn.send_packed_command(self._conn.pack_command("PUBLISH", channel, payload), check_health=False)
            self._unread += 1

    def _read_replies(self, conn: Any) -> None:
        """Read the replies the server owes (an error reply raises ResponseError)."""
        while self._unread:
            self._unread -= 1
            conn.read_response()

    def _forget(self) -> None:
        # the parent's connection (and possibly a held lock) must not be used here
        self._pool, self._conn, self._unread = None, None, 0
        self._lock = threading.Lock()

    def _disconnect(self) -> None:
        with self._lock:
            pool, conn, self._pool, self._conn = self._pool, self._conn, None, None
            try:
                if conn is not None:
                    self._read_replies(conn)  # closing with commands in flight could reset the connection
            finally:
                self._unread = 0
                if pool is not None:
                    pool.disconnect()


class RedisSubscriber(Subscriber):
    """PSUBSCRIBE on a Redis server; subscribed (confirmed) when constructed."""

    def __init__(self, url: str, patterns: Iterable[str]) -> None:
        super().__init__(url, patterns)
        import redis

        self._client = _redis_client(url)
        self._pubsub = self._client.pubsub()
        self._early: collections.deque[Message] = collections.deque()
        try:
            self._pubsub.psubscribe(*self.patterns)
            self._await_confirmation()
        except redis.RedisError as exc:
            self.close()
            raise BackendUnavailable(f"cannot subscribe on {_safe_url(url)}: {exc}", "is Redis running?") from exc
        except BackendUnavailable:
            self.close()
            raise

    def _await_confirmation(self) -> None:
        """Wait until the server confirmed every pattern, so later publishes reach us."""
        pending = set(self.patterns)
        deadline = time.monotonic() + SUBSCRIBE_TIMEOUT
        while pending:
            left = _remaining(deadline)
            if not left:
                raise BackendUnavailable(f"{_safe_url(self.url)} did not confirm the subscription")
            raw = self._pubsub.get_message(timeout=left)
            if raw is None:
                continue
            if raw["type"] == "psubscribe":
                pending.discard(raw["channel"])
            elif (message := self._to_message(raw)) is not None:
                self._early.append(message)

    def _to_message(self, raw: Mapping[str, Any] | None) -> Message | None:
        if raw is None or raw.get("type") != "pmessage":
            return None
        try:
            return Message(raw["pattern"], raw["channel"], decode(raw["data"]))
        except ValueError:
            log.warning("ignoring non-JSON message on %s", raw.get("channel"))
            return None

    def get_message(self, timeout: float | None = None) -> Message | None:
        if self._early:
            return self._early.popleft()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = _remaining(deadline)
            message = self._to_message(self._read(1.0 if left is None else left))
            if message is not None:
                return message
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def _read(self, timeout: float) -> Mapping[str, Any] | None:
        import redis

        try:
            return self._pubsub.get_message(timeout=timeout)
        except redis.RedisError as exc:
            raise BackendUnavailable(f"lost pub/sub connection to {_safe_url(self.url)}: {exc}") from exc

    def close(self) -> None:
        import redis

        try:
            self._pubsub.close()
            self._client.close()
        except (redis.RedisError, OSError):
            log.debug("error closing redis subscriber", exc_info=True)


# --------------------------------------------------------------------------
# SQLite (local, server-free)

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS messages ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " channel TEXT NOT NULL,"
    " data TEXT NOT NULL,"
    " created REAL NOT NULL)"
)
_INDEX = "CREATE INDEX IF NOT EXISTS messages_created ON messages (created)"


def sqlite_path(url: str) -> Path:
    """The file of a ``sqlite:///relative`` or ``sqlite:////absolute`` URL."""
    if not url.startswith(SQLITE_PREFIX):
        raise InvalidInput(f"not a sqlite pub/sub URL: {url!r}", "use sqlite:///path/to/pubsub.db")
    path = url[len(SQLITE_PREFIX):].split("?", 1)[0]
    if not path or path == ":memory:":
        raise InvalidInput(f"pub/sub URL {url!r} needs a file path", "processes share the file")
    return Path(path)


def _sqlite_connect(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) the pub/sub file in WAL mode with a busy timeout."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(_SCHEMA)
    conn.execute(_INDEX)
    return conn


class SqlitePublisher(Publisher):
    """INSERT into a shared SQLite file; prunes old rows now and then."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.path = sqlite_path(url)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._next_prune = 0.0

    def _backend_errors(self) -> tuple[type[BaseException], ...]:
        return (sqlite3.Error, OSError)

    def _send(self, channel: str, payload: str) -> None:
        with self._lock:
            if self._conn is None:
                self._conn = _sqlite_connect(self.path)
            now = time.time()
            self._conn.execute(
                "INSERT INTO messages (channel, data, created) VALUES (?, ?, ?)", (channel, payload, now)
            )
            if time.monotonic() >= self._next_prune:
                self._next_prune = time.monotonic() + PRUNE_EVERY
                self._conn.execute("DELETE FROM messages WHERE created < ?", (now - RETENTION,))

    def _forget(self) -> None:
        # the parent's connection (and possibly a held lock) must not be used here
        self._conn = None
        self._lock = threading.Lock()

    def _disconnect(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None


class SqliteSubscriber(Subscriber):
    """Polls the shared SQLite file for rows newer than those seen so far."""

    def __init__(self, url: str, patterns: Iterable[str], poll_interval: float = POLL_INTERVAL) -> None:
        super().__init__(url, patterns)
        self.path = sqlite_path(url)
        self.poll_interval = poll_interval
        self._buffer: collections.deque[Message] = collections.deque()
        try:
            self._conn = _sqlite_connect(self.path)
            row = self._conn.execute("SELECT COALESCE(MAX(id), 0) FROM messages").fetchone()
        except (sqlite3.Error, OSError) as exc:
            raise BackendUnavailable(f"cannot open pub/sub file {self.path}: {exc}") from exc
        self._last_id: int = row[0]

    def get_message(self, timeout: float | None = None) -> Message | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._buffer:
            self._poll()
            if self._buffer:
                break
            left = _remaining(deadline)
            if left == 0.0:
                return None
            time.sleep(self.poll_interval if left is None else min(self.poll_interval, left))
        return self._buffer.popleft()

    def _poll(self) -> None:
        try:
            rows = self._conn.execute(
                "SELECT id, channel, data FROM messages WHERE id > ? ORDER BY id LIMIT 1000", (self._last_id,)
            ).fetchall()
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                return  # a writer holds the file; try again next poll
            raise BackendUnavailable(f"cannot read pub/sub file {self.path}: {exc}") from exc
        for row_id, channel, data in rows:
            self._last_id = row_id
            self._match(channel, data)

    def _match(self, channel: str, data: str) -> None:
        pattern = next((p for p in self.patterns if fnmatch.fnmatchcase(channel, p)), None)
        if pattern is None:
            return
        try:
            self._buffer.append(Message(pattern, channel, decode(data)))
        except ValueError:
            log.warning("ignoring non-JSON message on %s", channel)

    def close(self) -> None:
        self._conn.close()


# --------------------------------------------------------------------------
# factories


def _scheme_error(url: str) -> InvalidInput:
    return InvalidInput(
        f"unsupported pub/sub URL {_safe_url(url)!r}",
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
