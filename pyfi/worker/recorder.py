"""Record calls and their lifecycle events into the database, in the background.

The non-blocking methods of :class:`Recorder` only enqueue; one writer thread
per process writes each batch in ONE transaction of two bulk statements
(:mod:`pyfi.worker.rows`: records of a call merge into its row, commutatively
and idempotently, so they may arrive out of order, from several processes,
or twice). A batch is written once records stop coming for :data:`QUIET`
seconds, or after gathering for :data:`LONGEST_GATHER` seconds: writing
waits for a burst of calls to end instead of taking CPU from it; ``flush()``
and ``stop()`` write at once. While the database is down (:data:`~pyfi.worker.rows.OUTAGE`) the
batch is kept and retried with capped backoff; a batch rejected for its data
is retried call by call. If the database is still down when the process must
stop, what is left goes to a journal on disk (:mod:`pyfi.worker.journal`)
that the next recorder for that database writes. A long outage does not grow
memory without bound either: past ``memory_cap`` records, what waits goes to
the journal too, and is taken back once the database is.
"""
from __future__ import annotations

import atexit
import datetime as dt
import logging
import os
import queue
import threading
import time
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from pyfi.db.base import utcnow
from pyfi.db.engine import get_engine, redact
from pyfi.enums import CallState, EventName
from pyfi.errors import ConfigError
from pyfi.worker import journal
from pyfi.worker.rows import OUTAGE, Record, first_line, without_links_to, write, write_isolated

log = logging.getLogger(__name__)

FIRST_BACKOFF = 0.05
#: a batch is written once no record has come for this long (the calls that make its records are over) ...
QUIET = 0.2
#: ... or once it has gathered for this long: while calls keep coming, writing their records waits, so that it
#: never takes CPU from a burst of calls shorter than this (what it writes then takes as long, after the burst)
LONGEST_GATHER = 1.0
#: how long an idle writer sleeps before it looks again (a first record, flush() and stop() wake it at once)
IDLE_WAIT = 1.0
#: records a process keeps in memory while the database is down (about 1 KB each); the rest wait on disk
MEMORY_CAP = 100_000


class Recorder:
    """Batched, asynchronous writer of calls and events (see the module docstring)."""

    def __init__(self, db_url: str, *, owner: str | None = None, longest_gather: float = LONGEST_GATHER,
                 quiet: float = QUIET, max_batch: int = 500, max_backoff: float = 2.0, memory_cap: int = MEMORY_CAP,
                 worker: str | None = None) -> None:
        """``longest_gather``: the longest a batch gathers; ``quiet``: a batch is written once no record has come
        for that long. ``worker``: the worker process whose records these are (``<pid>@<host>``), named on every
        event."""
        _check_url(db_url)
        self.db_url, self.owner, self.worker = db_url, owner, worker
        self.longest_gather, self.quiet, self.max_batch, self.max_backoff = longest_gather, quiet, max_batch, max_backoff
        self.memory_cap = memory_cap
        self._pid, self._exit_hook = -1, False
        self._adopt_process()

    def received(self, call_id: str, name: str, socket_id: str | None, parent: str | None = None,
                 tracking: str | None = None, taskparent: str | None = None, plug_id: str | None = None,
                 when: dt.datetime | None = None, *, attempt: int = 0, sender: str | None = None) -> None:
        self._put(call_id, CallState.RECEIVED, EventName.RECEIVED, when, attempt, f"Received task {name or call_id}", None,
                  name=name, socket_id=socket_id, parent=parent, tracking=tracking, taskparent=taskparent,
                  plug_id=plug_id, sender=sender)

    def started(self, call_id: str, when: dt.datetime | None = None, *, name: str = "", attempt: int = 0,
                socket_id: str | None = None) -> None:
        self._put(call_id, CallState.RUNNING, EventName.PRERUN, when, attempt,
                  f"Prerun for task {name or call_id}", "started", name=name, socket_id=socket_id)

    def finished(self, call_id: str, resultkey: str | None, when: dt.datetime | None = None, *,
                 name: str = "", attempt: int = 0, socket_id: str | None = None) -> None:
        self._put(call_id, CallState.FINISHED, EventName.POSTRUN, when, attempt,
                  f"Postrun for task {name or call_id}", "finished", name=name,
                  resultkey=resultkey[:120] if resultkey else None, socket_id=socket_id)

    def failed(self, call_id: str, error: str, when: dt.datetime | None = None, *,
               name: str = "", attempt: int = 0, socket_id: str | None = None) -> None:
        summary = error.strip().splitlines()[0] if error.strip() else "error"
        self._put(call_id, CallState.FAILED, EventName.FAILURE, when, attempt,
                  f"Failure for task {name or call_id}: {summary}", "finished", name=name, error=error,
                  socket_id=socket_id)

    def retried(self, call_id: str, reason: str, when: dt.datetime | None = None, *,
                name: str = "", attempt: int = 0, socket_id: str | None = None) -> None:
        """``attempt`` is the attempt that asked for the retry (Celery's ``request.retries``)."""
        self._put(call_id, CallState.RETRY, EventName.RETRY, when, attempt,
                  f"Retry for task {name or call_id}: {reason}", None, name=name, socket_id=socket_id)

    def revoked(self, call_id: str, when: dt.datetime | None = None, *, name: str = "",
                socket_id: str | None = None) -> None:
        self._put(call_id, CallState.REVOKED, EventName.REVOKED, when, 0,
                  f"Revoked task {name or call_id}", "finished", name=name, socket_id=socket_id)

    def cancelled(self, call_id: str, name: str, socket_id: str | None, note: str,
                  when: dt.datetime | None = None) -> None:
        """A cancelled call this worker met and dropped (``pyfi task cancel``): its event; it stays cancelled."""
        self._put(call_id, CallState.CANCELLED, EventName.CANCELLED, when, 0, note, None, name=name,
                  socket_id=socket_id)

    def refused(self, call_id: str, name: str, socket_id: str | None, reason: str, when: dt.datetime | None = None, *,
                sender: str | None = None, tracking: str | None = None) -> None:
        """The worker's gate would not run it (:mod:`pyfi.worker.gate`).

        A call of that id that ran gets the refusal's event and keeps every column as it is; one that runs
        later replaces the columns this wrote (:mod:`pyfi.worker.rows`).
        """
        self._put(call_id, CallState.REFUSED, EventName.REFUSED, when, 0, f"Refused task {name or call_id}: {reason}",
                  None, name=name, socket_id=socket_id, sender=sender, tracking=tracking or call_id)

    @property
    def failing(self) -> bool:
        """The last write failed (the database is down): a flush now would wait for it to come back."""
        return self._failing

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
            self._take_journal()
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
        self._urgent = True
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
        self._urgent = True
        self._wake.set()
        thread.join(timeout)
        if not thread.is_alive():
            return True
        self._save_journal()
        return False

    def _save_journal(self) -> None:
        """The database stayed down past the stop's deadline: keep what is left on disk for the next recorder."""
        self._frozen.set()  # the writer takes no more from the queue
        waiting, _markers = self._drain()
        records = self._batch + waiting
        try:
            path = journal.save(self.db_url, records)
        except OSError as exc:
            log.error("recorder: %d records lost: the database %s is down and the journal cannot be written (%s)",
                      len(records), redact(self.db_url), exc)
            return
        if path is not None:
            log.error("recorder: the database %s is still down; %d records saved to %s, to be written by the next "
                      "worker started on this machine", redact(self.db_url), len(records), path)

    def _spill(self) -> None:
        """A long outage: move the records waiting in the queue to the journal, so memory stays bounded."""
        records, markers = self._drain()
        self._spilled_markers += markers  # set once the spilled records are taken back and written
        try:
            path = journal.save(self.db_url, records)
        except OSError as exc:
            for record in records:  # kept in memory, as before there was a cap
                self._queue.put(record)
            if not self._spill_failed:
                log.error("recorder: cannot move %d records to the journal (%s); keeping them in memory", len(records), exc)
            self._spill_failed = True
            return
        with self._count_lock:
            self._count -= len(records)
        self._spilled = True
        log.warning("recorder: the database %s is still down; %d records moved from memory to %s",
                    redact(self.db_url), len(records), path)

    def _drain(self) -> tuple[list[Record], list[threading.Event]]:
        """Everything waiting in the queue: the records, and the flush markers among them."""
        records: list[Record] = []
        markers: list[threading.Event] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return records, markers
            (markers if isinstance(item, threading.Event) else records).append(item)

    def _take_back_spilled(self) -> None:
        """The database is back: write what :meth:`_spill` put on disk, then release the flushes that waited for it."""
        if self._spilled:
            self._take_journal()
        for marker in self._spilled_markers:
            self._queue.put(marker)
        self._urgent = self._urgent or bool(self._spilled_markers)  # flushes that waited out the outage
        self._spilled, self._spilled_markers, self._spill_failed = False, [], False

    def _take_journal(self) -> None:
        """Write the records an earlier process saved for this database (:mod:`pyfi.worker.journal`)."""
        for path, records in journal.claim(self.db_url):
            with self._count_lock:
                self._count += len(records)
            for call_id, state, event, when, attempt, note, fields, worker in records:
                self._queue.put(Record(call_id, CallState(state), EventName(event), when, attempt, note, fields,
                                       worker))
            written = threading.Event()
            self._queue.put(written)
            threading.Thread(target=_delete_when_set, args=(written, path), name="pyfi-journal", daemon=True).start()
            self._wake.set()  # (an idle writer: a batch starts gathering)
            log.warning("recorder: writing %d records saved in %s", len(records), path)

    def _adopt_process(self) -> None:
        """After a fork, drop the parent's queue, thread and locks: its records are its own to write."""
        if self._pid == os.getpid():
            return
        self._pid = os.getpid()
        self._queue: queue.SimpleQueue[Record | threading.Event] = queue.SimpleQueue()
        self._count_lock, self._start_lock = threading.Lock(), threading.Lock()
        self._wake, self._stopping, self._frozen = threading.Event(), threading.Event(), threading.Event()
        self._urgent = False  # flush() or stop() asked: the batch gathering now is written at once
        self._thread: threading.Thread | None = None
        self._count = 0
        self._batch: list[Record] = []
        self._markers: list[threading.Event] = []
        self._backlog = False
        self._gone: set[str] = set()  # socket/plug ids the database no longer has (deleted while calls ran)
        self._failing = False
        self._spilled = False  # records went to the journal in this outage
        self._spilled_markers: list[threading.Event] = []  # the flushes that wait for them
        self._spill_failed = False

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
            first = self._count == 1
        self._queue.put(Record(call_id, state, event, when, attempt, note, fields, self.worker))
        if first:  # the writer may be idle: a batch starts gathering
            self._wake.set()

    def _run(self) -> None:
        """The writer loop: gather a batch, write it (retrying while the database is down), repeat."""
        failures, outage_began = 0, 0.0
        while self._batch or not (self._stopping.is_set() and self._queue.empty()):
            if not self._batch:
                self._gather()
            if self._batch and not self._write_batch(failures):
                self._failing = True
                failures += 1
                outage_began = outage_began or time.monotonic()
                if self._count - len(self._batch) > self.memory_cap:
                    self._spill()
                self._sleep(backoff(failures, self.max_backoff))
                continue
            if failures:
                log.warning("recorder: database %s is back after %.1f s; recording resumed",
                            redact(self.db_url), time.monotonic() - outage_began)
                failures, outage_began, self._failing = 0, 0.0, False
                self._take_back_spilled()
            self._complete_batch()

    def _gather(self) -> None:
        """Take up to ``max_batch`` records, ending early at a flush marker.

        Lets a batch gather first (:meth:`_wait_for_batch`) unless behind or stopping.
        """
        if not self._backlog and not self._stopping.is_set():
            self._wait_for_batch()
        self._urgent = False
        while len(self._batch) < self.max_batch and not self._frozen.is_set():
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, threading.Event):
                self._markers.append(item)
                if not self._queue.empty():  # another flush may wait behind it: no gathering before it either
                    self._urgent = True
                break
            self._batch.append(item)
        self._backlog = len(self._batch) >= self.max_batch

    def _wait_for_batch(self) -> None:
        """Until no record has come for ``quiet`` s, or ``longest_gather`` s after the first came; at once for
        flush() and stop(). An idle writer waits for a first record."""
        deadline, seen = None, -1
        while not self._urgent and not self._stopping.is_set():
            count = self._count
            if count == 0:
                if not self._queue.empty():  # a flush marker, and no record to wait for
                    return
                self._sleep(IDLE_WAIT)
                continue
            deadline = deadline or time.monotonic() + self.longest_gather
            remaining = deadline - time.monotonic()
            if count == seen or remaining <= 0:
                return
            seen = count
            self._sleep(min(self.quiet, remaining))

    def _sleep(self, seconds: float) -> None:
        """Sleep, but wake at once for flush(), stop() and a first record."""
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
            batch = without_links_to(self._gone, self._batch) if self._gone else self._batch
            try:
                write(engine, batch, self.owner)
            except OUTAGE:
                raise
            except Exception as exc:  # noqa: BLE001 - the data, not the database: retrying the batch cannot help
                log.warning("recorder: batch rejected (%s); writing it call by call", first_line(exc))
                self._gone |= write_isolated(engine, batch, self.owner)
            return True
        except Exception as exc:  # noqa: BLE001 - an outage (or no engine): keep the batch, retry later
            if not failures:
                log.warning("recorder: cannot write to %s (%s); keeping %d records, retrying with backoff",
                            redact(self.db_url), first_line(exc), self._count)
            return False


def backoff(failures: int, cap: float) -> float:
    """Seconds to wait after ``failures`` failed writes in a row: doubling, capped (and finite in a long outage)."""
    return min(cap, FIRST_BACKOFF * 2 ** min(failures - 1, 30))


def _utc(when: dt.datetime | None) -> dt.datetime:
    """Naive UTC, the clock domain of every timestamp in the database."""
    if when is None:
        return utcnow()
    return when.astimezone(dt.timezone.utc).replace(tzinfo=None) if when.tzinfo else when


def _check_url(db_url: str) -> None:
    try:
        backend = make_url(db_url).get_backend_name()
    except ArgumentError as exc:
        raise ConfigError(f"invalid database URI {db_url!r}", "e.g. postgresql://user@localhost/pyfi") from exc
    if backend not in ("postgresql", "sqlite"):
        raise ConfigError(f"the recorder cannot write to {backend} databases", "use postgresql:// or sqlite://")


def _delete_when_set(written: threading.Event, path: Any) -> None:
    """Delete a journal file once its records are written (never, if this process ends first: the next takes it)."""
    written.wait()
    path.unlink(missing_ok=True)
