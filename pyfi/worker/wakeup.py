"""Wake the worker's event loop when a signal arrives, so SIGTERM stops it at once.

Why: Celery's event loop (Redis, RabbitMQ) looks at shutdown requests
between two polls, and a poll waits up to a second for sockets or timers.
Python runs the SIGTERM handler mid-poll and then resumes the poll, so
``pyfi proc stop`` waited up to that second before the worker even began to
stop. Here the signal also writes a byte to a pipe the loop watches
(``signal.set_wakeup_fd``): the poll returns, and the loop sees the request.
"""
from __future__ import annotations

import os
import signal
from typing import Any

from celery import bootsteps


class SignalWakeup(bootsteps.StartStopStep):
    """Consumer bootstep: a pipe in the event loop that every caught signal writes to."""

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def __init__(self, consumer: Any, **kwargs: Any) -> None:
        super().__init__(consumer, **kwargs)
        self.fds: tuple[int, int] | None = None
        self.previous = -1

    def start(self, consumer: Any) -> None:
        hub = getattr(consumer, "hub", None)
        if hub is None or self.fds is not None:  # a transport without an event loop polls briefly anyway
            return
        read_end, write_end = os.pipe()
        os.set_blocking(read_end, False)
        os.set_blocking(write_end, False)
        try:
            self.previous = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        except ValueError:  # not the main thread (a worker run inside another program): signals are not ours
            os.close(read_end)
            os.close(write_end)
            return
        self.fds = (read_end, write_end)
        hub.add_reader(read_end, self.drain, read_end)

    def stop(self, consumer: Any) -> None:
        if self.fds is None:
            return
        signal.set_wakeup_fd(self.previous)
        hub = getattr(consumer, "hub", None)
        if hub is not None:
            hub.remove_reader(self.fds[0])
        for fd in self.fds:
            os.close(fd)
        self.fds = None

    shutdown = stop

    @staticmethod
    def drain(fd: int) -> None:
        """The signal's byte: reading it is all there is to do (its handler has already run)."""
        try:
            while os.read(fd, 512):
                pass
        except BlockingIOError:
            pass


def forget_wakeup(**_: Any) -> None:
    """A pool process must not write to its parent's pipe (``worker_process_init``)."""
    signal.set_wakeup_fd(-1)
