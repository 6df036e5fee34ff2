"""Server-free transport for one machine: a polled SQLite table (the embedded default)."""
from __future__ import annotations

import collections
import fnmatch
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Iterable, Sequence

from pyfi.errors import BackendUnavailable, InvalidInput
from pyfi.messaging.pubsub.base import Publisher, Subscriber, remaining
from pyfi.messaging.pubsub.protocol import SQLITE_PREFIX, Message, decode
from pyfi.private import private_file

log = logging.getLogger(__name__)

#: poll interval, row retention and how often to prune
POLL_INTERVAL = 0.05
RETENTION = 300.0
PRUNE_EVERY = 30.0
BUSY_TIMEOUT = 2.0

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
    private_file(path)
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

    def _send_many(self, items: Sequence[tuple[str, str]]) -> None:
        """One INSERT per message, in one transaction (one fsync-free commit for the batch)."""
        with self._lock:
            if self._conn is None:
                self._conn = _sqlite_connect(self.path)
            now = time.time()
            with self._conn:  # isolation_level=None: open the transaction ourselves
                self._conn.execute("BEGIN")
                self._conn.executemany("INSERT INTO messages (channel, data, created) VALUES (?, ?, ?)",
                                       [(channel, payload, now) for channel, payload in items])
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
            left = remaining(deadline)
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


