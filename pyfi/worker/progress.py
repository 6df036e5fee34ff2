"""Whether a worker makes progress: how long a call has waited for a free pool process that does not take it.

A worker with a free pool process takes the next call it holds within
milliseconds. A call that waits longer while a process is free means the
worker is hung: every pool process blocked (on a lock a dead process held,
say), or the pool frozen; it holds calls that no one runs. A long call is
no hang: it keeps its process busy, and the calls behind it wait for a busy
pool, which does not count.

The worker's parent process writes, every :data:`EVERY` seconds, how long
its oldest such call has waited (``0``: none) to ``<control>.progress``;
the agent reads it (:func:`stalled_for`), shows the worker as hung in ``ls
workers`` and restarts it once a call has waited its ``--stalled-after``
seconds (:mod:`pyfi.agent.stalls`). The file's age counts too, so a parent
process that is frozen itself, and writes nothing, is seen as well.
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from celery import bootsteps

from pyfi.worker import rundir

log = logging.getLogger("pyfi.worker")

#: seconds between two reports of the worker's progress
EVERY = 1.0
#: a report older than this (in reports missed) means the parent process has stopped writing
MISSED_REPORTS = 5


def progress_path(control: Path) -> Path:
    return control.with_suffix(".progress")


class WaitClock:
    """When each call now waiting for a free pool process was first seen waiting."""

    def __init__(self) -> None:
        self.first_seen: dict[str, float] = {}

    def waited(self, waiting: set[str], pool_free: bool, now: float) -> float:
        """Seconds the oldest of ``waiting`` has waited while the pool had a free process (0: none waits)."""
        if not pool_free:
            self.first_seen.clear()  # behind busy processes: waiting is right
            return 0.0
        self.first_seen = {call: self.first_seen.get(call, now) for call in waiting}
        return now - min(self.first_seen.values(), default=now)


def pool_calls() -> tuple[set[str], int]:
    """(ids of the calls handed to the pool that no process has taken yet, how many calls processes run now)."""
    from celery.worker import state

    running = {request.id for request in list(state.active_requests)}
    held = {request.id for request in list(state.reserved_requests)}
    return held - running, len(running)


def stalled_for(control: Path, now: float | None = None) -> float:
    """Seconds the worker of ``control`` has held a call with a free process that does not take it (agent side)."""
    path = progress_path(control)
    text = rundir.read_text(path)
    if not text:
        return 0.0
    try:
        waited, age = float(text.strip()), (now or time.time()) - path.stat().st_mtime
    except (ValueError, OSError):
        return 0.0
    if waited > 0:
        return waited + max(age, 0.0)
    return age if age > EVERY * MISSED_REPORTS else 0.0


class ProgressReport(bootsteps.StartStopStep):
    """Consumer bootstep: write how long a call has waited for a free pool process, every :data:`EVERY` seconds."""

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def __init__(self, consumer: Any, **kwargs: Any) -> None:
        super().__init__(consumer, **kwargs)
        self.stopped = threading.Event()

    def start(self, consumer: Any) -> None:
        path = consumer.app.conf.get("pyfi_control_file")
        if not path:
            return
        self.stopped.clear()
        threading.Thread(target=self.report, args=(consumer, progress_path(Path(path))), daemon=True,
                         name="pyfi-progress").start()

    def stop(self, consumer: Any) -> None:
        self.stopped.set()

    def report(self, consumer: Any, path: Path) -> None:
        clock = WaitClock()
        while not self.stopped.is_set():
            waiting, running = pool_calls()
            size = getattr(consumer.pool, "num_processes", None) or 1
            waited = clock.waited(waiting, running < size, time.monotonic())
            try:
                rundir.replace(path, f"{waited:.1f}".encode())
            except OSError as exc:  # its run directory is gone: the agent that made it is too
                log.debug("cannot report progress: %s", exc)
            self.stopped.wait(EVERY)
