"""The worker's consumer: a call passes the gate, then runs the function its socket names now.

Every message first goes through the worker's :class:`~pyfi.worker.gate.Gate`
(``app.conf.pyfi_gate``), which checks who sent it against what it is
signed with, before anything here or in Celery reads it; a call held until
its time (a retry's countdown) goes through it again when it is due.

A call is addressed to a socket (its ``pyfi_socket`` header, and the
socket's own broker queue), but its message also names the task
(``<module>.<function>``) the socket had when it was sent. When the socket's
function changes while calls wait in its queue (a typo in ``-t`` fixed, a
new module), the old name is either unknown to the restarted worker, and
Celery would discard the call, or the name of another socket's function,
which would run the wrong code. Rewriting the name to the socket's current
task before Celery looks it up makes the call run what its socket says,
and be recorded under that socket.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from celery.worker import state
from celery.worker.consumer import Consumer
from celery.worker.state import task_ready

from pyfi.messaging.redis_transport import give_back_unrun, keep_held
from pyfi.messaging.routing import SOCKET_HEADER

log = logging.getLogger("pyfi.worker")


class SocketConsumer(Consumer):
    """Celery's consumer, with each call's task name taken from its socket (``app.conf.pyfi_socket_tasks``)."""

    def create_task_handler(self, *args: Any, **kwargs: Any) -> Callable[[Any], Any]:
        handle = super().create_task_handler(*args, **kwargs)
        current: dict[str, str] = dict(self.app.conf.get("pyfi_socket_tasks") or {})
        ours, registered = set(current.values()), self.app.tasks
        renamed: set[tuple[str, str]] = set()
        gate = self.app.conf.get("pyfi_gate")

        def on_task_received(message: Any) -> Any:
            if gate is not None and not gate.admit(message):
                return None
            headers = message.headers
            task = current.get(headers.get(SOCKET_HEADER)) if isinstance(headers, dict) else None
            named = headers.get("task") if task is not None else None
            if task is not None and named != task and (named in ours or named not in registered):
                _note_rename(renamed, named, task)
                headers["task"] = task
            return handle(message)

        return on_task_received

    def on_connection_error_after_connected(self, exc: Exception) -> None:
        """The broker went away: the calls still running stay held (they are acknowledged when done, and run once)."""
        keep_held(self.connection)
        super().on_connection_error_after_connected(exc)

    def connect(self) -> Any:
        """Connected (again): the calls taken before and dropped with the old connection go back to their queues."""
        connection = super().connect()
        give_back_unrun(connection, {request.message.delivery_tag for request in list(state.requests.values())})
        return connection

    def apply_eta_task(self, task: Any) -> None:
        """A call held until its time (a retry's countdown) is due: it runs only if its sender may still run it."""
        gate = self.app.conf.get("pyfi_gate")
        if gate is not None and not gate.readmit(task.message):
            task_ready(task)  # refused (acknowledged) or back in its queue: this worker holds it no more
            self.qos.decrement_eventually()
            return
        super().apply_eta_task(task)


def _note_rename(renamed: set[tuple[str, str]], old: str, new: str) -> None:
    """Logged once per pair: a backlog of such calls would otherwise fill the log."""
    if (old, new) not in renamed:
        renamed.add((old, new))
        log.warning("calls sent as %s run %s, their socket's function now", old, new)
