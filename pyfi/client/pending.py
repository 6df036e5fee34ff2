"""The client records the calls it sends as pending, in the background (:mod:`pyfi.core.pending`).

Sending stays as fast as Celery's: a send only notes its calls here, and
the first recording carries most of them. Every :data:`FLUSH_EVERY`
seconds a thread of the context takes the calls noted at least
:data:`UNTAKEN_AFTER` seconds before and, in one transaction, writes the
ones no worker has recorded yet as pending; a call a worker took at once
costs one read of its id, and one whose result came back meanwhile
(:meth:`PendingWriter.took`) nothing. :meth:`PendingWriter.flush` (when a call's
``get`` times out, when the context closes, and at exit) writes the rest
whatever their age. A workflow's calls are all noted when it is sent, its
later steps too: they wait for the ones before them. A write the database
refuses costs only the records (one warning); the calls were sent.
"""
from __future__ import annotations

import atexit
import datetime as dt
import logging
import threading
import time
from dataclasses import replace
from typing import Any, Iterator

from pyfi.core.pending import Pending
from pyfi.db.base import utcnow
from pyfi.messaging.routing import SOCKET_HEADER

log = logging.getLogger("pyfi.client")

#: seconds between two writes of the calls noted since
FLUSH_EVERY = 0.5
#: seconds a call waits untaken before it is written as pending by the background thread
UNTAKEN_AFTER = 2.0


class PendingWriter:
    """The pending records of one context's sends, written by a thread of its own."""

    def __init__(self, context: Any) -> None:
        self.context = context
        self.noted: list[tuple[float, Pending]] = []  # (when it was noted: time.monotonic(), the call)
        self.answered: set[str] = set()  # calls whose result came back: a worker took them
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.thread: threading.Thread | None = None
        self.warned = False

    def note(self, canvas: Any) -> None:
        """Note every call of a signature or workflow that was just sent."""
        self.note_calls(list(calls_of(canvas)))

    def note_calls(self, calls: list[Pending]) -> None:
        """Note calls that were just sent."""
        now = time.monotonic()
        with self.lock:
            self.noted.extend((now, call) for call in calls)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self.run, daemon=True, name="pyfi-pending")
                self.thread.start()
                atexit.register(self.flush)

    def took(self, call_ids: list[str]) -> None:
        """These calls' result came back (``Call.get``): a worker took them, so none is checked or written."""
        with self.lock:
            self.answered.update(call_ids)

    def run(self) -> None:
        while True:
            self.wake.wait(FLUSH_EVERY)
            self.wake.clear()
            self.flush(UNTAKEN_AFTER)

    def flush(self, older_than: float = 0.0) -> None:
        """Write the calls noted at least ``older_than`` seconds ago that no worker has recorded, as pending."""
        cutoff = time.monotonic() - older_than
        with self.lock:
            due = [(when, call) for when, call in self.noted if when <= cutoff]
            self.noted = [(when, call) for when, call in self.noted if when > cutoff]
            answered, self.answered = self.answered, self.answered - {call.id for _, call in due}
        due = [(when, call) for when, call in due if call.id not in answered]
        if not due:
            return
        from pyfi.core.pending import record_untaken

        try:
            with self.context.session() as session:
                record_untaken(session, self.context.actor.name, sent_at(due))
        except Exception as exc:  # noqa: BLE001 - the calls were sent: only their pending records are lost
            if not self.warned:
                self.warned = True
                log.warning("sent calls are not recorded as pending (%s); they show once a worker takes them",
                            str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


def sent_at(noted: list[tuple[float, Pending]]) -> list[Pending]:
    """The calls, each stamped in UTC with when it was sent (noted on the monotonic clock)."""
    now, clock = time.monotonic(), utcnow()
    return [replace(call, sent=clock - dt.timedelta(seconds=now - when)) for when, call in noted]


def calls_of(canvas: Any) -> Iterator[Pending]:
    """The calls of a Celery signature, chain, group or chord that carry pyfi's socket header."""
    stack = [canvas]
    while stack:
        item = stack.pop()
        tasks = getattr(item, "tasks", None)
        if tasks is not None:  # a chain, group or chord (a chord's body too)
            stack.extend(tasks)
            body = getattr(item, "body", None)
            if body is not None:
                stack.append(body)
            continue
        options = item.options
        socket = (options.get("headers") or {}).get(SOCKET_HEADER)
        if socket and options.get("task_id"):
            yield Pending(options["task_id"], item.task, socket, options.get("root_id"), options.get("parent_id"))
