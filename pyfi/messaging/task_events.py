"""Celery task events that name each call by its socket, for ``celery events`` and Flower.

Off by default (``[celery] task_events``, ``PYFI_TASK_EVENTS``, ``pyfi agent
start --task-events``): each call then costs a few more broker messages
(bench/task_events.py). When on, a worker sends Celery's task events, and
its ``task-received`` event, the one that names a task for Celery's
monitors, carries the socket's name instead of the function's
(``module.function``, what the message itself names). Which socket a
received call is for comes from its ``pyfi_socket`` header, noted by the
``task_received`` signal just before Celery sends that event; the names are
the worker's ``app.conf.pyfi_socket_names`` (socket id -> name).

Only a broker that fans messages out carries events between processes:
Redis and RabbitMQ. The embedded default's SQLite broker keeps them in the
sending process.
"""
from __future__ import annotations

from typing import Any

from celery.app.events import Events
from celery.events.dispatcher import EventDispatcher

from pyfi.messaging.routing import SOCKET_HEADER

#: received call id -> its socket id, from the task_received signal until its task-received event is sent
_RECEIVING: dict[str, str] = {}
#: more than this many notes means events are not being sent: start again rather than grow
_MOST_NOTES = 10_000


class SocketNamedDispatcher(EventDispatcher):
    """Celery's event dispatcher, with the socket's name in each ``task-received`` event."""

    def send(self, type: str, *args: Any, **fields: Any) -> Any:  # noqa: A002 - Celery's argument name
        if type == "task-received":
            socket_id = _RECEIVING.pop(str(fields.get("uuid")), None)
            names = self.app.conf.get("pyfi_socket_names") or {}
            if socket_id in names:
                fields["name"] = names[socket_id]
        return super().send(type, *args, **fields)


class SocketNamedEvents(Events):
    dispatcher_cls = f"{__name__}:SocketNamedDispatcher"


def note_socket(sender: Any = None, request: Any = None, **_: Any) -> None:
    """``task_received`` handler: remember which socket the call is for, until its event is sent."""
    headers = getattr(request, "request_dict", None)
    socket_id = headers.get(SOCKET_HEADER) if isinstance(headers, dict) else None
    if socket_id is None:
        return
    if len(_RECEIVING) >= _MOST_NOTES:
        _RECEIVING.clear()
    _RECEIVING[str(request.id)] = str(socket_id)


def enable(app: Any) -> None:
    """Turn task events on in ``app`` (a worker's, or a sender's: it then sends ``task-sent``)."""
    from celery import signals

    app.conf.worker_send_task_events = True
    app.conf.task_send_sent_event = True
    signals.task_received.connect(note_socket, weak=False, dispatch_uid="pyfi.task_events")
