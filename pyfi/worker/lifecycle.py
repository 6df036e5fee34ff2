"""Lifecycle hooks: record every call in the database and publish it live.

Celery's prefork pool fires ``task_received`` and ``task_revoked`` in the
parent and failure/retry in the child; a call's start and success reach
the child's hooks from its task (:class:`pyfi.worker.tasks.SocketTask`),
which is cheaper than a signal on every call's path. All hand what they
see to a :class:`~pyfi.worker.sink.RecordSink`, which is fork-aware and
sends it to the worker's sidecar (:mod:`pyfi.worker.sidecar`). The three
steps every call takes go as one line of raw facts each
(:mod:`pyfi.worker.steps`: the sidecar builds the records and messages);
a rarer step's records and message go in one write (``sink.batch()``).
Hooks never raise into Celery: a hook failure must not fail the call.

The parent, which dispatches every call, does as little as it can: it
only stamps the reception time into the request it hands to the child
(:data:`RECEIVED_HEADER`). The child's prerun line carries that time, so
``received`` is recorded and published with ``prerun``, at its own time,
and a call's records usually reach the database in one batch: one call row
written once. A call that never reaches a child (revoked, expired) is
recorded and published as received by the parent.

A call whose result (or error) goes along plugs has its records written
before the calls it causes are sent (:meth:`Lifecycle.before_forwarding`),
so a flow never shows a call in the database before the one that caused it.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import time
from typing import Any

from celery import signals

from pyfi.enums import EventName
from pyfi.messaging.pubsub import Channel, build_message, channel_name
from pyfi.messaging.routing import PLUG_HEADER, SOCKET_HEADER, TASKPARENT_HEADER
from pyfi.flow import Routed
from pyfi.masking import printable
from pyfi.worker.cancels import Cancellation, Cancellations
from pyfi.worker.gate import SENDER_HEADER, Refusal
from pyfi.worker.sink import RecordSink
from pyfi.worker.spec import SocketSpec, WorkerSpec
from pyfi.worker.steps import message_date, naive_utc, postrun_line, prerun_line

log = logging.getLogger("pyfi.worker")

#: set by the worker's parent process on reception (epoch seconds), read by the child
RECEIVED_HEADER = "pyfi_received"
#: any call id: what the result backend's key for it looks like tells its prefix
_PROBE_ID = "00000000-pyfi-probe"
#: how long a call waits for its records to be written before forwarding along plugs
FORWARD_FLUSH_TIMEOUT = 2.0


def header(request: Any, name: str) -> Any:
    """A custom header from a worker Request (parent) or a task Context (child)."""
    data = _request_dict(request)
    if data is not None:
        return data.get(name)
    return getattr(request, name, None)


def _request_dict(request: Any) -> dict | None:
    """The message fields of a worker Request (what the parent hands to the child); None for a Context."""
    data = getattr(request, "request_dict", None) or getattr(request, "_request_dict", None)
    return data if isinstance(data, dict) else None


def stamp_received(request: Any, stamp: float) -> bool:
    """Parent: note the reception time in the request the child will get; False if it cannot."""
    data = _request_dict(request)
    if data is None:
        return False
    data[RECEIVED_HEADER] = stamp
    return True


class Lifecycle:
    def __init__(self, spec: WorkerSpec, sink: RecordSink, app: Any, forwarder: Any = None) -> None:
        self.spec, self.sink, self.app = spec, sink, app
        self.forwarder = forwarder  # pyfi.worker.plugs.Forwarder: results and errors along plugs
        self.task_names = {s.task_name for s in spec.sockets}
        self._by_task = {name: spec.sockets_for_task(name) for name in self.task_names}
        self._key_prefix: str | None = None  # the result backend's key prefix, learnt on first use
        self._quiet_until = 0.0  # no warning about unwritten records before then
        self.cancellations: Cancellations | None = None  # pyfi task cancel: no plug fires for a cancelled call

    def connect(self) -> None:
        signals.task_received.connect(self.on_received, weak=False)
        signals.task_failure.connect(self.on_failure, weak=False)
        signals.task_retry.connect(self.on_retry, weak=False)
        signals.task_revoked.connect(self.on_revoked, weak=False)
        signals.worker_process_shutdown.connect(self.on_child_exit, weak=False)

    def on_child_exit(self, **_: Any) -> None:
        """Prefork children skip atexit: write what they recorded before they go."""
        self.sink.stop()

    # -- helpers ----------------------------------------------------------------------
    def socket_of(self, request: Any, task_name: str) -> SocketSpec | None:
        return self._socket(task_name, header(request, SOCKET_HEADER))

    def _socket(self, task_name: str, socket_id: str | None) -> SocketSpec | None:
        """The socket a call names in its header, else the first socket of its task."""
        candidates = self._by_task.get(task_name, ())
        for socket in candidates:
            if socket.id == socket_id:
                return socket
        return candidates[0] if candidates else None

    def publish(self, socket: SocketSpec | None, state: EventName | str, **fields: Any) -> None:
        if socket is None:
            return
        room = self.spec.room_for(socket)
        self.sink.publish(channel_name(room, Channel.TASK), build_message(room, str(state), **fields))

    def publish_output(self, task: Any, stream: str, line: str) -> None:
        """A line the function printed or logged, on the ``log`` channel."""
        socket = self.socket_of(task.request, task.name)
        if socket is None:
            return
        room = self.spec.room_for(socket)
        message = build_message(room, stream, Channel.LOG, message=line, call=task.request.id)
        self.sink.publish(channel_name(room, Channel.LOG), message)

    def resultkey(self, task_id: str) -> str:
        """The result backend's key for a call: a fixed prefix and the id, for every backend pyfi uses."""
        if self._key_prefix is None:
            probe = self._backend_key(_PROBE_ID)
            self._key_prefix = probe[: -len(_PROBE_ID)] if probe.endswith(_PROBE_ID) else ""
        return self._key_prefix + task_id if self._key_prefix else self._backend_key(task_id)

    def _backend_key(self, task_id: str) -> str:
        getter = getattr(self.app.backend, "get_key_for_task", None)
        key = getter(task_id) if getter else task_id
        return key.decode() if isinstance(key, bytes) else str(key)

    def before_forwarding(self) -> None:
        """A call's records are written before the calls it causes along plugs.

        Each process records in its own batches, so without this a downstream
        call (run by another pool process) could be in the database before the
        call that caused it.
        """
        if not self.sink.flush(timeout=FORWARD_FLUSH_TIMEOUT) and time.monotonic() >= self._quiet_until:
            self._quiet_until = time.monotonic() + 30.0  # once in a while: in an outage every forwarded call gets here
            log.warning("records not written yet (is the database down?); forwarding anyway")

    def record_received(self, request: Any, name: str, when: dt.datetime | None = None,
                        socket: SocketSpec | None = None) -> None:
        """The ``received`` record of a call, from a worker Request or a task Context."""
        socket = socket or self.socket_of(request, name)
        self.sink.received(
            request.id, name, socket.id if socket else None,
            parent=request.parent_id, tracking=request.root_id or request.id,
            taskparent=header(request, TASKPARENT_HEADER), plug_id=header(request, PLUG_HEADER), when=when,
            sender=header(request, SENDER_HEADER),
        )

    # -- parent process ---------------------------------------------------------------
    def on_received(self, sender: Any = None, request: Any = None, **_: Any) -> None:
        if request is None or request.name not in self.task_names:
            return
        try:
            if not stamp_received(request, time.time()):  # the child cannot learn when: record it here
                self.record_received(request, request.name)  # (the sidecar publishes it with prerun, as always)
        except Exception:  # noqa: BLE001 - a hook must never fail the call
            log.exception("recording received for %s failed", getattr(request, "id", "?"))

    def on_revoked(self, sender: Any = None, request: Any = None, **_: Any) -> None:
        """``sender`` is the task, ``request`` the call's task Context (the worker Request in older Celery)."""
        name = getattr(sender, "name", None) or getattr(request, "name", None)
        if request is None or name not in self.task_names:
            return
        socket = self.socket_of(request, name)
        received = _received_when(request)
        with self.sink.batch():  # no child recorded it (a duplicate event is ignored)
            self.record_received(request, name, when=received, socket=socket)
            self.sink.revoked(request.id, name=name, socket_id=socket.id if socket else None)
            self.publish(socket, EventName.RECEIVED, date=received and message_date(received))
            self.publish(socket, EventName.REVOKED)

    def on_refused(self, message: Any, refusal: Refusal) -> None:
        """The gate would not run a call (:mod:`pyfi.worker.gate`): record and publish it as refused.

        What the message says is a sender's choice: its task is recorded as the call's name only when it is one
        of this worker's, and otherwise, like its id and flow, with control characters escaped and cut short.
        """
        headers = message.headers if isinstance(message.headers, dict) else {}
        task = headers.get("task")
        name = task if isinstance(task, str) and task in self.task_names else _text(task) or "?"
        call_id = _text(headers.get("id"), 255) or "?"
        socket = (self._socket_by_id(headers.get(SOCKET_HEADER)) or self._socket_of_queue(message)
                  or self._socket(name, None) or next(iter(self.spec.sockets), None))  # (a call is a socket's)
        with self.sink.batch():
            self.sink.refused(call_id, name, socket.id if socket else None, refusal.reason, sender=refusal.sender,
                              tracking=_text(headers.get("root_id"), 255))
            self.publish(socket, EventName.REFUSED, message=refusal.reason, call=call_id)

    def on_cancelled(self, message: Any, cancellation: Cancellation) -> None:
        """The gate met a cancelled call (:mod:`pyfi.worker.cancels`) and dropped it: record and publish that."""
        headers = message.headers if isinstance(message.headers, dict) else {}
        task = headers.get("task")
        name = task if isinstance(task, str) and task in self.task_names else _text(task) or "?"
        socket = self._socket_by_id(headers.get(SOCKET_HEADER)) or self._socket_of_queue(message)
        note = f"Cancelled by {cancellation.by or '?'}: it never ran"
        with self.sink.batch():
            self.sink.cancelled(cancellation.call_id, name, socket.id if socket else None, note)
            self.publish(socket, EventName.CANCELLED, message=note, call=cancellation.call_id)

    def was_cancelled(self, call_id: str) -> bool:
        """Whether a call that ended was cancelled while it ran (its plugs do not fire then)."""
        return self.cancellations is not None and self.cancellations.ask(call_id)

    def _socket_by_id(self, socket_id: Any) -> SocketSpec | None:
        return next((s for s in self.spec.sockets if s.id == socket_id), None)

    def _socket_of_queue(self, message: Any) -> SocketSpec | None:
        """The socket whose broker queue a message names as its routing key (as pyfi's senders do)."""
        key = (getattr(message, "delivery_info", None) or {}).get("routing_key")
        return next((s for s in self.spec.sockets if s.broker_queue == key), None)

    # -- child process ----------------------------------------------------------------
    def on_prerun(self, task_id: str, task: Any) -> None:
        """A call starts (:meth:`pyfi.worker.tasks.SocketTask.before_start`)."""
        if task.name not in self.task_names:
            return
        request = task.request  # a task Context: pyfi's headers are its attributes
        socket = self._socket(task.name, getattr(request, SOCKET_HEADER, None))
        now = time.time()
        received = getattr(request, RECEIVED_HEADER, None)
        self.sink.send_step(prerun_line(
            now, received if isinstance(received, float) else now, request.retries or 0, task_id, task.name,
            socket.id if socket else None, request.parent_id, request.root_id or request.id,
            getattr(request, TASKPARENT_HEADER, None), getattr(request, PLUG_HEADER, None),
            getattr(request, SENDER_HEADER, None)))

    def on_postrun(self, task_id: str, task: Any, retval: Any) -> None:
        """A call succeeded and its result is stored (:meth:`pyfi.worker.tasks.SocketTask.on_success`)."""
        if task.name not in self.task_names:
            return
        key = self.resultkey(task_id)
        request = task.request
        socket = self._socket(task.name, getattr(request, SOCKET_HEADER, None))
        self.sink.send_step(postrun_line(time.time(), request.retries or 0, task_id, task.name,
                                         socket.id if socket else None, key, _json(retval)))
        if self.forwarder is not None and socket is not None:
            if self.forwarder.wires(socket.id):
                self.before_forwarding()
            elif not isinstance(retval, Routed):  # nothing to send (a Routed value is checked against its plugs)
                return
            if self.was_cancelled(task_id):
                return
            self.forwarder.forward_result(task_id, request.root_id, socket.id, retval)

    def on_failure(self, task_id: str = "", exception: BaseException | None = None, sender: Any = None, **_: Any) -> None:
        if sender is None or sender.name not in self.task_names:
            return
        error = f"{type(exception).__name__}: {exception}"
        socket = self.socket_of(sender.request, sender.name)
        with self.sink.batch():
            self.sink.failed(task_id, error, name=sender.name, attempt=sender.request.retries or 0,
                             socket_id=socket.id if socket else None)
            self.publish(socket, EventName.FAILURE, message=error, call=task_id)
        if self.forwarder is not None and socket is not None:  # task_failure fires once the retries are spent
            if self.forwarder.wires(socket.id):
                self.before_forwarding()
            if self.was_cancelled(task_id):
                return
            self.forwarder.forward_error(task_id, sender.request.root_id, socket.id, exception)

    def on_retry(self, request: Any = None, reason: Any = None, sender: Any = None, **_: Any) -> None:
        if sender is None or sender.name not in self.task_names or request is None:
            return
        socket = self.socket_of(request, sender.name)
        with self.sink.batch():
            self.sink.retried(request.id, str(reason), name=sender.name, attempt=request.retries or 0,
                              socket_id=socket.id if socket else None)
            self.publish(socket, EventName.RETRY, message=str(reason), call=request.id)


def _received_when(request: Any) -> dt.datetime | None:
    """When the parent took the call (stamped by :meth:`Lifecycle.on_received`), as naive UTC."""
    stamp = header(request, RECEIVED_HEADER)
    return naive_utc(stamp) if isinstance(stamp, float) else None


def _text(value: Any, limit: int = 200) -> str | None:
    """A header a sender chose, as text fit for a column and a terminal (None if absent)."""
    return printable(str(value)[:limit])[:limit] if value else None


def _json(value: Any) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return json.dumps(repr(value))
