"""Pause, resume and resize without killing: stop or start consuming the socket queues, grow or shrink the pool.

The agent writes ``pause`` or ``run`` into the worker's control file, and,
when a deployment says how many worker processes the node runs,
``concurrency N`` on a second line, then wakes the worker's watcher thread
through a FIFO next to it (:func:`wake_path`); the thread also looks every
:data:`POLL` seconds. It schedules the change on the consumer's own loop
(``call_soon``), which is the only thread allowed to touch it. The worker
answers by writing its state next to the control file. A pool is resized in
place: a scheduler that moves part of a processor away stops no worker.

The agent also replaces a ``supervised`` file next to the control file
about every second. A worker that has not seen it renewed for
:data:`ORPHAN_PAUSE` seconds (its agent was killed) stops consuming, so it
never serves beside the worker that replaces it on another node; an agent
that adopts it renews the file and it resumes. After :data:`ORPHAN_EXIT`
seconds with no agent it exits.
"""
from __future__ import annotations

import logging
import os
import select
import signal
import stat
import threading
import time
from pathlib import Path
from typing import Any

from celery import bootsteps

from pyfi.worker import rundir

log = logging.getLogger("pyfi.worker")

#: seconds between two looks at the control file when nothing wakes the watcher (each look is a wake-up of the
#: worker's process, which costs a busy machine CPU: an agent wakes the watcher after every change it writes)
POLL = 1.0
#: how often to look when the wake FIFO cannot be made (the control file is then the only signal)
POLL_WITHOUT_WAKE = 0.1
PAUSE, RUN = "pause", "run"
#: seconds without a sign of its agent after which a worker stops consuming (its agent may be gone)
ORPHAN_PAUSE = 15.0
#: seconds without a sign of its agent after which a worker exits
ORPHAN_EXIT = 120.0


CONCURRENCY = "concurrency"


def read_control(path: Path) -> tuple[str, int | None]:
    """(``pause`` or ``run``, the pool size asked for or None)."""
    try:
        lines = path.read_text().split("\n")
    except FileNotFoundError:
        return RUN, None
    command = lines[0].strip() or RUN
    sizes = [line.split()[1] for line in lines[1:] if line.startswith(CONCURRENCY + " ")]
    return command, int(sizes[0]) if sizes and sizes[0].isdigit() and int(sizes[0]) > 0 else None


def read_command(path: Path) -> str:
    return read_control(path)[0]


def write_command(path: Path, command: str, concurrency: int | None = None) -> None:
    """Replace the control file (the agent's side), never through a link the worker left (:mod:`pyfi.worker.rundir`).

    The file is its run directory's owner's: with ``agent start -u`` the
    worker runs as another user than the agent (root), and reads it.
    """
    rundir.replace(path, (command + (f"\n{CONCURRENCY} {concurrency}" if concurrency else "")).encode())
    rundir.poke(wake_path(path))


def wake_path(control: Path) -> Path:
    """The FIFO the worker's watcher waits on: a byte written to it says the control file changed."""
    return control.with_suffix(".wake")


def open_wake(control: Path) -> tuple[int, int] | None:
    """The read and write ends of the worker's wake FIFO, made if missing; None if it cannot be made.

    The worker holds a write end itself, so that the read end never reports
    end-of-file when a writer (the agent) closes its own.
    """
    path = wake_path(control)
    try:
        try:
            os.mkfifo(path, 0o600)
        except FileExistsError:
            pass
        read_end = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        log.warning("no wake FIFO at %s (%s): looking at the control file every %g s", path, exc, POLL_WITHOUT_WAKE)
        return None
    info = os.fstat(read_end)
    if not stat.S_ISFIFO(info.st_mode) or info.st_uid != os.geteuid():
        os.close(read_end)
        log.warning("%s is not this worker's FIFO: looking at the control file every %g s", path, POLL_WITHOUT_WAKE)
        return None
    return read_end, os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)


def state_path(control: Path) -> Path:
    return control.with_suffix(".state")


def read_state(control: Path) -> str | None:
    """What the worker says it is doing ("running", "paused", a spare's "standby"); None before it says."""
    return read_line(state_path(control))


def supervised_path(control: Path) -> Path:
    """The file the agent renews while it supervises the worker."""
    return control.with_name("supervised")


def unsupervised_for(control: Path) -> float:
    """Seconds since the agent last renewed :func:`supervised_path` (0 when there is none: no agent supervises it)."""
    try:
        return max(time.time() - supervised_path(control).stat().st_mtime, 0.0)
    except OSError:
        return 0.0


def error_path(control: Path) -> Path:
    """Where a worker that cannot start leaves its one-line reason."""
    return control.with_suffix(".error")


def problems_path(control: Path) -> Path:
    """Where a worker that runs without some of its sockets says why (one line); the agent shows it."""
    return control.with_suffix(".problems")


def read_line(path: Path) -> str | None:
    """A one-line report the worker left (an error, its problems); None if there is none (:mod:`pyfi.worker.rundir`)."""
    text = rundir.read_text(path)
    return text.strip() or None if text is not None else None


class PauseControl(bootsteps.StartStopStep):
    """Consumer bootstep: follow the control file named in ``app.conf.pyfi_control_file``."""

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def __init__(self, consumer: Any, **kwargs: Any) -> None:
        super().__init__(consumer, **kwargs)
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None
        self.wake: tuple[int, int] | None = None  # the wake FIFO's read and write ends

    def start(self, consumer: Any) -> None:
        path = consumer.app.conf.get("pyfi_control_file")
        if not path:
            return
        self.stopped.clear()
        if self.wake is None:
            self.wake = open_wake(Path(path))
        self.thread = threading.Thread(target=self.watch, args=(consumer, Path(path)), daemon=True, name="pyfi-control")
        self.thread.start()

    def stop(self, consumer: Any) -> None:
        self.stopped.set()
        if self.wake is not None:
            try:
                os.write(self.wake[1], b"!")  # the watcher leaves now, not at its next look
            except OSError:
                pass

    def wait(self) -> bool:
        """Until the control file may have changed (a wake-up, or POLL s passed); True once stopped."""
        if self.wake is None:
            return self.stopped.wait(POLL_WITHOUT_WAKE)
        if select.select([self.wake[0]], [], [], POLL)[0]:
            try:
                os.read(self.wake[0], 4096)
            except BlockingIOError:
                pass
        return self.stopped.is_set()

    def watch(self, consumer: Any, path: Path) -> None:
        applied, size, leaving = RUN, None, False
        state_path(path).write_text("running")  # consuming: tells the agent the worker is up
        while True:
            wanted, wanted_size = read_control(path)
            alone = unsupervised_for(path)
            if alone >= ORPHAN_PAUSE:
                wanted = PAUSE
            if alone >= ORPHAN_EXIT and not leaving:
                log.warning("no agent for %.0f s: exiting", alone)
                os.kill(os.getpid(), signal.SIGTERM)  # a warm shutdown: running calls end first
                leaving = True
            if wanted != applied:
                if alone >= ORPHAN_PAUSE:
                    log.warning("no sign of this worker's agent for %.0f s: not consuming until one adopts it", alone)
                consumer.call_soon(self.apply, consumer, wanted, path)
                applied = wanted
            if wanted_size is not None and wanted_size != size:
                consumer.call_soon(self.resize, consumer, wanted_size)
                size = wanted_size  # (a shrink that finds every process busy is tried again at the next change)
            if self.wait():
                return

    @staticmethod
    def resize(consumer: Any, size: int) -> None:
        """Grow or shrink the pool to ``size`` processes, and the prefetch with it (as Celery's pool_grow does)."""
        change = size - consumer.pool.num_processes
        try:
            if change > 0:
                consumer.pool.grow(change)
            elif change < 0:
                consumer.pool.shrink(-change)
        except ValueError:  # billiard: no idle process to take away now
            log.warning("cannot shrink the pool to %d processes now: every process is busy", size)
            return
        consumer._update_prefetch_count(change)

    @staticmethod
    def apply(consumer: Any, command: str, path: Path) -> None:
        queues = consumer.app.conf.get("pyfi_queues") or []
        for name in queues:
            if command == PAUSE:
                consumer.cancel_task_queue(name)
            else:
                consumer.add_task_queue(name)
        state_path(path).write_text("paused" if command == PAUSE else "running")
