"""Record calls and their lifecycle events into the database, in the background.

The non-blocking methods of :class:`Recorder` only enqueue; one writer thread
per process writes each batch in ONE transaction of two bulk statements.
Records of a call arrive out of order and from several processes (the prefork
parent sees ``received``/``revoked``, the child the rest), so each write is a
commutative, idempotent merge: the state only moves forward by :data:`RANK` (a
retried call stays ``retry`` until an attempt ends); ``started``/``created``
keep the earliest value, other columns the first written; event ids derive from
(call, event, attempt), so duplicates are ignored. While the database is down
the batch is kept and retried with capped backoff; a batch rejected for good
(IntegrityError, DataError) is retried call by call, then without socket/plug ids.
"""
from __future__ import annotations

import atexit
import datetime as dt
import functools
import hashlib
import logging
import os
import queue
import threading
import time
import uuid
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Engine, case, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DataError, IntegrityError
from sqlalchemy.sql.dml import Insert

from pyfi.db.base import utcnow
from pyfi.db.engine import get_engine, redact
from pyfi.db.models import Call, Event
from pyfi.enums import CallState, EventName
from pyfi.errors import ConfigError
from pyfi.worker.bulk import Bulk, compile_bulk

log = logging.getLogger(__name__)

CALLS = Call.__table__
EVENTS = Event.__table__
#: Fixed forever: event ids derive from it, so changing it would duplicate events.
EVENT_NAMESPACE = uuid.UUID("5b0f1c9e-7d1a-4c36-9a5e-0c6f9c1e2a71")
_NAMESPACE_BYTES = EVENT_NAMESPACE.bytes
_ORDER = ("pending", "received", "running", "retry", "revoked", "failed", "finished")
RANK: dict[CallState, int] = {CallState(state): rank for rank, state in enumerate(_ORDER)}
FIRST_WINS = ("owner", "socket_id", "plug_id", "parent", "taskparent", "tracking", "resultkey", "error", "finished")
FOREIGN_KEYS = ("socket_id", "plug_id")
CALL_COLUMNS = tuple(c.name for c in CALLS.columns)
PERMANENT = (IntegrityError, DataError)  # the data is wrong: retrying the same rows cannot help
FIRST_BACKOFF = 0.05


@dataclass(slots=True)
class _Record:
    """One step of one call, as enqueued; ``fields`` are the call columns it sets."""

    call_id: str
    state: CallState
    event: EventName
    when: dt.datetime
    attempt: int
    note: str
    fields: dict[str, Any]


class Recorder:
    """Batched, asynchronous writer of calls and events (see the module docstring)."""

    def __init__(self, db_url: str, *, owner: str | None = None, flush_interval: float = 0.2,
                 max_batch: int = 500, max_backoff: float = 2.0) -> None:
        _check_url(db_url)
        self.db_url, self.owner = db_url, owner
        self.flush_interval, self.max_batch, self.max_backoff = flush_interval, max_batch, max_backoff
        self._pid, self._exit_hook = -1, False
        self._adopt_process()

    def received(self, call_id: str, name: str, socket_id: str | None, parent: str | None = None,
                 tracking: str | None = None, taskparent: str | None = None, plug_id: str | None = None,
                 when: dt.datetime | None = None, *, attempt: int = 0) -> None:
        self._put(call_id, CallState.RECEIVED, EventName.RECEIVED, when, attempt, f"Received task {name or call_id}", None,
                  name=name, socket_id=socket_id, parent=parent, tracking=tracking, taskparent=taskparent,
                  plug_id=plug_id)

    def started(self, call_id: str, when: dt.datetime | None = None, *, name: str = "", attempt: int = 0) -> None:
        self._put(call_id, CallState.RUNNING, EventName.PRERUN, when, attempt,
                  f"Prerun for task {name or call_id}", "started", name=name)

    def finished(self, call_id: str, resultkey: str | None, when: dt.datetime | None = None, *,
                 name: str = "", attempt: int = 0) -> None:
        self._put(call_id, CallState.FINISHED, EventName.POSTRUN, when, attempt,
                  f"Postrun for task {name or call_id}", "finished", name=name,
                  resultkey=resultkey[:120] if resultkey else None)

    def failed(self, call_id: str, error: str, when: dt.datetime | None = None, *,
               name: str = "", attempt: int = 0) -> None:
        summary = error.strip().splitlines()[0] if error.strip() else "error"
        self._put(call_id, CallState.FAILED, EventName.FAILURE, when, attempt,
                  f"Failure for task {name or call_id}: {summary}", "finished", name=name, error=error)

    def retried(self, call_id: str, reason: str, when: dt.datetime | None = None, *,
                name: str = "", attempt: int = 0) -> None:
        """``attempt`` is the attempt that asked for the retry (Celery's ``request.retries``)."""
        self._put(call_id, CallState.RETRY, EventName.RETRY, when, attempt,
                  f"Retry for task {name or call_id}: {reason}", None, name=name)

    def revoked(self, call_id: str, when: dt.datetime | None = None, *, name: str = "") -> None:
        self._put(call_id, CallState.REVOKED, EventName.REVOKED, when, 0,
                  f"Revoked task {name or call_id}", "finished", name=name)

    @property
    def pending(self) -> int:
        """Records enqueued in this process and not yet written."""
        self._adopt_process()
        return self._count

    def start(self) -> None:
        """Start this process's writer thread (idempotent; records start it lazily too)."""
        self._adopt_process()
        with self._start_lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="pyfi-recorder", daemon=True)
            self._thread.start()
            if not self._exit_hook:  # a daemon thread dies at exit: write what is pending first
                atexit.register(self.stop, 5.0)
                self._exit_hook = True

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Block until every record enqueued before this call is written; False on timeout."""
        return self.request_flush().wait(timeout)

    def request_flush(self) -> threading.Event:
        """An event set once every record enqueued before this call is written (:meth:`flush` without the wait)."""
        self.start()
        marker = threading.Event()
        self._queue.put(marker)
        self._wake.set()
        return marker

    def stop(self, timeout: float | None = 10.0) -> bool:
        """Write everything pending and end the writer; False if the database stayed down past ``timeout``."""
        self._adopt_process()
        thread = self._thread
        if thread is None or not thread.is_alive():
            return self._count == 0
        self._stopping.set()
        self._queue.put(threading.Event())  # ends the batch being drained
        self._wake.set()
        thread.join(timeout)
        return not thread.is_alive()

    def _adopt_process(self) -> None:
        """After a fork, drop the parent's queue, thread and locks: its records are its own to write."""
        if self._pid == os.getpid():
            return
        self._pid = os.getpid()
        self._queue: queue.SimpleQueue[_Record | threading.Event] = queue.SimpleQueue()
        self._count_lock, self._start_lock = threading.Lock(), threading.Lock()
        self._wake, self._stopping = threading.Event(), threading.Event()
        self._thread: threading.Thread | None = None
        self._count = 0
        self._batch: list[_Record] = []
        self._markers: list[threading.Event] = []
        self._backlog = False

    def _put(self, call_id: str, state: CallState, event: EventName, when: dt.datetime | None, attempt: int,
             note: str, time_field: str | None, **fields: Any) -> None:
        """Enqueue one record; ``time_field`` names the call column that takes its time."""
        if self._pid != os.getpid() or self._thread is None or not self._thread.is_alive():
            self.start()
        when = _utc(when)
        fields["name"] = (fields["name"] or "")[:200]
        if time_field:
            fields[time_field] = when
        with self._count_lock:
            self._count += 1
        self._queue.put(_Record(call_id, state, event, when, attempt, note, fields))

    def _run(self) -> None:
        """The writer loop: gather a batch, write it (retrying while the database is down), repeat."""
        failures, outage_began = 0, 0.0
        while self._batch or not (self._stopping.is_set() and self._queue.empty()):
            if not self._batch:
                self._gather()
            if self._batch and not self._write_batch(failures):
                failures += 1
                outage_began = outage_began or time.monotonic()
                self._sleep(backoff(failures, self.max_backoff))
                continue
            if failures:
                log.warning("recorder: database %s is back after %.1f s; recording resumed",
                            redact(self.db_url), time.monotonic() - outage_began)
                failures, outage_began = 0, 0.0
            self._complete_batch()

    def _gather(self) -> None:
        """Take up to ``max_batch`` records, ending early at a flush marker.

        Waits out the flush interval first unless behind or stopping: that wait is what makes batches.
        """
        if not self._backlog and not self._stopping.is_set():
            self._sleep(self.flush_interval)
        while len(self._batch) < self.max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, threading.Event):
                self._markers.append(item)
                break
            self._batch.append(item)
        self._backlog = len(self._batch) >= self.max_batch

    def _sleep(self, seconds: float) -> None:
        """Sleep, but wake at once for flush() and stop()."""
        self._wake.wait(seconds)
        self._wake.clear()

    def _complete_batch(self) -> None:
        with self._count_lock:
            self._count -= len(self._batch)
        for marker in self._markers:
            marker.set()
        self._batch, self._markers = [], []

    def _write_batch(self, failures: int) -> bool:
        """Write the batch; False (batch kept) if the database is unavailable."""
        try:
            engine = get_engine(self.db_url)
            try:
                _write(engine, self._batch, self.owner)
            except PERMANENT as exc:
                log.warning("recorder: batch rejected (%s); writing it call by call", _first_line(exc))
                _write_isolated(engine, self._batch, self.owner)
            return True
        except Exception as exc:  # noqa: BLE001 - any failure: keep the batch, retry later
            if not failures:
                log.warning("recorder: cannot write to %s (%s); keeping %d records, retrying with backoff",
                            redact(self.db_url), _first_line(exc), self._count)
            return False


def _write(engine: Engine, records: list[_Record], owner: str | None) -> None:
    """One transaction: upsert the coalesced call rows, then insert the new events."""
    calls, events = _rows(records, owner)
    with engine.begin() as conn:
        upsert_calls, insert_events = _bulk_statements(conn.dialect)
        upsert_calls.execute(conn, calls)
        insert_events.execute(conn, events)


def _write_isolated(engine: Engine, records: list[_Record], owner: str | None) -> None:
    """Slow path after a permanent error: one transaction per call, so one bad call costs only itself."""
    by_call: dict[str, list[_Record]] = {}
    for record in records:
        by_call.setdefault(record.call_id, []).append(record)
    for call_id, group in by_call.items():
        try:
            _write(engine, group, owner)
            continue
        except PERMANENT as exc:
            log.warning("recorder: call %s rejected (%s); retrying without socket/plug ids", call_id, _first_line(exc))
        try:
            _write(engine, [_without_foreign_keys(r) for r in group], owner)
        except PERMANENT as exc:
            log.error("recorder: dropping %d records of call %s: %s", len(group), call_id, _first_line(exc))


def _without_foreign_keys(record: _Record) -> _Record:
    return replace(record, fields={k: v for k, v in record.fields.items() if k not in FOREIGN_KEYS})


def _rows(records: list[_Record], owner: str | None) -> tuple[list[dict], list[dict]]:
    """Coalesce the records into one row per call and one per distinct event, sorted by id.

    Sorting gives concurrent writers (parent and children) one lock order, so
    PostgreSQL never has to break a deadlock between them.
    """
    now = utcnow()
    calls: dict[str, dict] = {}
    events: dict[str, dict] = {}
    for record in records:
        row = calls.get(record.call_id)
        if row is None:
            row = calls[record.call_id] = dict.fromkeys(CALL_COLUMNS)
            row.update(record.fields, id=record.call_id, owner=owner, state=record.state, created=record.when,
                       lastupdated=now)
        else:
            _merge(row, record)
        event_id = event_id_for(record.call_id, record.event, record.attempt)
        events.setdefault(event_id, {
            "id": event_id, "name": record.event, "call_id": record.call_id, "owner": owner,
            "note": record.note, "created": record.when, "lastupdated": record.when,
        })
    return sorted(calls.values(), key=lambda r: r["id"]), sorted(events.values(), key=lambda r: r["id"])


def backoff(failures: int, cap: float) -> float:
    """Seconds to wait after ``failures`` failed writes in a row: doubling, capped (and finite in a long outage)."""
    return min(cap, FIRST_BACKOFF * 2 ** min(failures - 1, 30))


def event_id_for(call_id: str, event: str, attempt: int) -> str:
    """``str(uuid.uuid5(EVENT_NAMESPACE, "call/event/attempt"))``, without building UUID objects (3 per call).

    ``event`` is the event's name; an :class:`EventName` is a str, and join takes its value as is
    (formatting it would call ``__str__``, ten times slower).
    """
    h = hashlib.sha1(_NAMESPACE_BYTES + "/".join((call_id, event, str(attempt))).encode()).hexdigest()
    # version 5 in the 13th digit; the RFC 4122 variant in the top two bits of the 17th
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def _merge(row: dict, record: _Record) -> None:
    """Fold ``record`` into its call's ``row``: the in-batch twin of the upsert's conflict clause."""
    if RANK[record.state] > RANK[row["state"]]:
        row["state"] = record.state
    if row["created"] is None or record.when < row["created"]:
        row["created"] = record.when
    for key, value in record.fields.items():  # only the columns this record sets (absent ones are None)
        if value is None:
            continue
        if key == "started":
            if row[key] is None or value < row[key]:
                row[key] = value
        elif key == "name":
            row[key] = row[key] or value
        elif key in FIRST_WINS and row[key] is None:
            row[key] = value


@functools.cache
def _statements(dialect: str) -> tuple[Insert, Insert]:
    """The call upsert (merging as :func:`_merge` does) and the idempotent event insert."""
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect]
    stmt = insert(CALLS)
    old, new = CALLS.c, stmt.excluded
    merged = {
        "state": case((_rank(new.state) > _rank(old.state), new.state), else_=old.state),
        "started": _earliest(old.started, new.started),
        "created": _earliest(old.created, new.created),
        "name": case((old.name == "", new.name), else_=old.name),
        "lastupdated": new.lastupdated,
        **{key: func.coalesce(old[key], new[key]) for key in FIRST_WINS},
    }
    upsert = stmt.on_conflict_do_update(index_elements=[old.id], set_=merged)
    events = insert(EVENTS).on_conflict_do_nothing(index_elements=[EVENTS.c.id])
    return upsert, events


@functools.cache
def _bulk_statements(dialect: Any) -> tuple[Bulk, Bulk]:
    """The call upsert and the event insert of :func:`_statements`, for the DBAPI of ``dialect``."""
    upsert, events = _statements(dialect.name)
    return compile_bulk(upsert, CALLS, dialect), compile_bulk(events, EVENTS, dialect)


def _rank(column: Any) -> Any:
    return case({state.value: rank for state, rank in RANK.items()}, value=column, else_=0)


def _earliest(old: Any, new: Any) -> Any:
    return case((old.is_(None), new), (new < old, new), else_=old)


def _utc(when: dt.datetime | None) -> dt.datetime:
    """Naive UTC, the clock domain of every timestamp in the database."""
    if when is None:
        return utcnow()
    return when.astimezone(dt.timezone.utc).replace(tzinfo=None) if when.tzinfo else when


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _check_url(db_url: str) -> None:
    try:
        backend = make_url(db_url).get_backend_name()
    except ArgumentError as exc:
        raise ConfigError(f"invalid database URI {db_url!r}", "e.g. postgresql://user@localhost/pyfi") from exc
    if backend not in ("postgresql", "sqlite"):
        raise ConfigError(f"the recorder cannot write to {backend} databases", "use postgresql:// or sqlite://")
