"""Cancelled calls (``pyfi task cancel``), as the worker learns them from the database.

The database is where a cancellation lives: a call queued while no worker
ran, or sent to a worker that starts later, is cancelled all the same. A
worker reads the cancelled calls of its sockets when it starts, before it
takes any call, then every :data:`POLL` seconds those cancelled since. The
gate (:mod:`pyfi.worker.gate`) drops a cancelled call instead of running it;
a running one whose cancellation asks to terminate it is stopped, as
Celery's ``revoke(terminate=True)`` stops it; the forwarder fires no plug
for a cancelled call. Every cancellation is in effect on every worker
within :data:`POLL` seconds (plus a query).
"""
from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
from dataclasses import dataclass
from typing import Any, Iterable

from celery import bootsteps

from pyfi.db.base import utcnow

log = logging.getLogger("pyfi.worker")

#: seconds between two reads of new cancellations
POLL = 1.0
#: how far back each read looks again (a cancellation is stamped by the canceller's clock when it is made)
MARGIN = dt.timedelta(seconds=60)


@dataclass(frozen=True)
class Cancellation:
    call_id: str
    by: str | None
    terminate: bool


class Cancellations:
    """The cancelled calls of one worker's sockets, kept up to date by :meth:`refresh`."""

    def __init__(self, db_url: str, socket_ids: Iterable[str]) -> None:
        self.db_url = db_url
        self.socket_ids = sorted(socket_ids)
        self.known: dict[str, Cancellation] = {}
        self.since: dt.datetime | None = None  # the latest cancellation read, on the database's clock

    def get(self, call_id: Any) -> Cancellation | None:
        return self.known.get(call_id) if isinstance(call_id, str) else None

    def ask(self, call_id: str) -> bool:
        """Whether the call is cancelled, read now (a pool process's copy of :attr:`known` is as old as it is)."""
        from sqlalchemy import select

        from pyfi.db.engine import session_scope
        from pyfi.db.models import Call
        from pyfi.enums import CallState

        if call_id in self.known:
            return True
        try:
            with session_scope(self.db_url) as session:
                return session.scalar(select(Call.state).where(Call.id == call_id)) == CallState.CANCELLED
        except Exception as exc:  # noqa: BLE001 - the database is away: the call is taken as not cancelled
            log.warning("cannot tell whether call %s was cancelled: %s", call_id, str(exc).splitlines()[0])
            return False

    def refresh(self) -> list[Cancellation]:
        """Read the cancellations made since the last read (at first: every one not yet run); return the new."""
        from sqlalchemy import select

        from pyfi.db.engine import session_scope
        from pyfi.db.models import Call
        from pyfi.enums import CallState

        if not self.socket_ids:
            return []
        query = select(Call.id, Call.cancelled_by, Call.terminate, Call.cancelled).where(
            Call.state == CallState.CANCELLED, Call.socket_id.in_(self.socket_ids))
        query = query.where(Call.started.is_(None)) if self.since is None else query.where(Call.cancelled >= self.since)
        read_at = utcnow()
        with session_scope(self.db_url) as session:
            rows = session.execute(query).all()
        new = [Cancellation(row.id, row.cancelled_by, bool(row.terminate)) for row in rows if row.id not in self.known]
        self.known.update((c.call_id, c) for c in new)
        self.since = read_at - MARGIN  # (a cancellation committed late, or stamped by a clock a little behind)
        return new


class CancelWatch(bootsteps.StartStopStep):
    """Consumer bootstep: read cancellations (``app.conf.pyfi_cancellations``) at start, then every POLL s."""

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def __init__(self, consumer: Any, **kwargs: Any) -> None:
        super().__init__(consumer, **kwargs)
        self.stopped = threading.Event()
        self.failing = False  # the last read failed (the database is away): said once, not at every poll

    def start(self, consumer: Any) -> None:
        cancellations = consumer.app.conf.get("pyfi_cancellations")
        if cancellations is None:
            return
        self.stopped.clear()
        self.read(consumer, cancellations)  # before the first call is taken
        threading.Thread(target=self.watch, args=(consumer, cancellations), daemon=True, name="pyfi-cancels").start()

    def stop(self, consumer: Any) -> None:
        self.stopped.set()

    def watch(self, consumer: Any, cancellations: Cancellations) -> None:
        while not self.stopped.wait(POLL):
            self.read(consumer, cancellations)

    def read(self, consumer: Any, cancellations: Cancellations) -> None:
        try:
            new = cancellations.refresh()
        except Exception as exc:  # noqa: BLE001 - the database is away: read again at the next poll
            if not self.failing:
                log.warning("cannot read cancelled calls now (%s); trying every %g s", str(exc).splitlines()[0]
                            if str(exc) else exc, POLL)
            self.failing = True
            return
        if self.failing:
            log.warning("reading cancelled calls again")
            self.failing = False
        doomed = {c.call_id for c in new if c.terminate}
        if doomed:
            consumer.call_soon(terminate, consumer, doomed)


def terminate(consumer: Any, call_ids: set[str]) -> None:
    """Stop the running calls among ``call_ids`` (SIGTERM to the pool process that runs each)."""
    from celery.worker import state as worker_state

    for request in list(worker_state.active_requests):
        if request.id in call_ids:
            log.warning("terminating cancelled call %s", request.id)
            request.terminate(consumer.pool, signal=signal.SIGTERM)
