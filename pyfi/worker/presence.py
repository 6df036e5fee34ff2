"""A worker started by hand (``pyfi worker start`` without an agent) lists itself in ``ls workers``.

An agent writes its workers' rows. A worker started by hand has no agent,
so it writes its own row (no agent, its pid, concurrency and the commit of
its checkout when that is a git clone) once it consumes, keeps the row's
``lastupdated`` fresh every ``HEARTBEAT`` seconds, and deletes it when it
stops. A row whose worker was killed (no clean stop) goes stale: ``ls
workers`` shows it as lost (``pyfi.core.liveness.shown_worker_status``), and
the next worker started by hand anywhere deletes it. Listing is secondary to
serving: a database that cannot be reached costs a warning, never the worker.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import subprocess
import threading
from pathlib import Path

from sqlalchemy import and_, delete, update
from sqlalchemy.exc import SQLAlchemyError

from pyfi.core.liveness import HEARTBEAT, LOST_AFTER
from pyfi.db.base import utcnow
from pyfi.db.engine import session_scope
from pyfi.db.models import Worker
from pyfi.enums import WorkerStatus
from pyfi.errors import PyfiError
from pyfi.worker.spec import WorkerSpec

log = logging.getLogger("pyfi.worker")


class Presence:
    """The row of one hand-started worker: written when it consumes, refreshed, deleted when it stops."""

    def __init__(self, db: str, spec: WorkerSpec, hostname: str, concurrency: int, owner: str,
                 checkout: Path | None) -> None:
        self.db, self.spec, self.hostname = db, spec, hostname
        self.concurrency, self.owner, self.checkout = concurrency, owner, checkout
        self.row_id: str | None = None
        self.stopping = threading.Event()
        self.lock = threading.Lock()  # one write at a time: a refresh never re-lists a worker that has stopped

    def on_ready(self, **_: object) -> None:
        """Celery's ``worker_ready``: the worker consumes now."""
        self._write(self._register)
        threading.Thread(target=self._beat, name="pyfi-presence", daemon=True).start()

    def stop(self) -> None:
        self.stopping.set()
        self._write(self._unregister)  # under the lock: a register retried meanwhile has its row_id by then

    def _beat(self) -> None:
        while not self.stopping.wait(HEARTBEAT):
            self._write(self._refresh)

    def _register(self) -> None:
        if self.stopping.is_set():
            return
        with session_scope(self.db) as session:
            stale = utcnow() - dt.timedelta(seconds=LOST_AFTER)
            session.execute(delete(Worker).where(and_(Worker.agent_id.is_(None), Worker.lastupdated < stale)))
            row = Worker(name=self.hostname, agent_id=None, processor_id=self.spec.processor_id, pid=os.getpid(),
                         concurrency=self.concurrency, commit=commit_of(self.checkout),
                         workdir=str(self.checkout or Path.cwd()), status=WorkerStatus.RUNNING, owner=self.owner)
            session.add(row)
            session.flush()
            self.row_id = row.id

    def _refresh(self) -> None:
        if self.stopping.is_set():
            return
        with session_scope(self.db) as session:
            done = session.execute(update(Worker).where(Worker.id == self.row_id).values(lastupdated=utcnow()))
        if done.rowcount == 0:  # deleted meanwhile (taken for a dead worker's): list it again
            self._register()

    def _unregister(self) -> None:
        if self.row_id is None:
            return
        with session_scope(self.db) as session:
            session.execute(delete(Worker).where(Worker.id == self.row_id))

    def _write(self, step) -> None:  # noqa: ANN001 - one of the bound methods above
        try:
            with self.lock:
                step()
        except (SQLAlchemyError, PyfiError) as exc:
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]  # without the SQL and its parameters
            log.warning("cannot update this worker's row in `ls workers` (it keeps serving): %s", reason)


def commit_of(checkout: Path | None) -> str | None:
    """The commit checked out in a git clone (a hand-started worker's is often one), else None."""
    if checkout is None:
        return None
    try:
        done = subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=checkout, capture_output=True,
                              text=True, timeout=5, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    sha = done.stdout.strip()
    return sha if done.returncode == 0 and len(sha) in (40, 64) else None
