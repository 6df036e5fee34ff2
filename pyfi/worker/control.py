"""Pause and resume without killing: stop or start consuming the socket queues.

The agent writes ``pause`` or ``run`` into the worker's control file; a
watcher thread notices within ``POLL`` seconds and schedules the change on
the consumer's own loop (``call_soon``), which is the only thread allowed to
touch it. The worker answers by writing its state next to the control file.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from celery import bootsteps

POLL = 0.1
PAUSE, RUN = "pause", "run"


def read_command(path: Path) -> str:
    try:
        return path.read_text().strip() or RUN
    except FileNotFoundError:
        return RUN


def write_command(path: Path, command: str) -> None:
    """Atomically replace the control file (the agent's side).

    The file is its run directory's owner's: with ``agent start -u`` the
    worker runs as another user than the agent (root), and reads it.
    """
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        directory = path.parent.stat()
        if directory.st_uid != os.geteuid():
            os.fchown(fd, directory.st_uid, directory.st_gid)
        os.write(fd, command.encode())
    finally:
        os.close(fd)
    tmp.replace(path)


def state_path(control: Path) -> Path:
    return control.with_suffix(".state")


def read_state(control: Path) -> str | None:
    """What the worker says it is doing ("running", "paused", a spare's "standby"); None before it says."""
    return read_line(state_path(control))


def error_path(control: Path) -> Path:
    """Where a worker that cannot start leaves its one-line reason."""
    return control.with_suffix(".error")


def problems_path(control: Path) -> Path:
    """Where a worker that runs without some of its sockets says why (one line); the agent shows it."""
    return control.with_suffix(".problems")


def read_line(path: Path) -> str | None:
    """A one-line report the worker left (an error, its problems); None if there is none."""
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


class PauseControl(bootsteps.StartStopStep):
    """Consumer bootstep: follow the control file named in ``app.conf.pyfi_control_file``."""

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def __init__(self, consumer: Any, **kwargs: Any) -> None:
        super().__init__(consumer, **kwargs)
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self, consumer: Any) -> None:
        path = consumer.app.conf.get("pyfi_control_file")
        if not path:
            return
        self.stopped.clear()
        self.thread = threading.Thread(target=self.watch, args=(consumer, Path(path)), daemon=True, name="pyfi-control")
        self.thread.start()

    def stop(self, consumer: Any) -> None:
        self.stopped.set()

    def watch(self, consumer: Any, path: Path) -> None:
        applied = RUN
        state_path(path).write_text("running")  # consuming: tells the agent the worker is up
        while True:
            wanted = read_command(path)
            if wanted != applied:
                consumer.call_soon(self.apply, consumer, wanted, path)
                applied = wanted
            if self.stopped.wait(POLL):
                return

    @staticmethod
    def apply(consumer: Any, command: str, path: Path) -> None:
        queues = consumer.app.conf.get("pyfi_queues") or []
        for name in queues:
            if command == PAUSE:
                consumer.cancel_task_queue(name)
            else:
                consumer.add_task_queue(name)
        state_path(path).write_text("paused" if command == PAUSE else "running")
