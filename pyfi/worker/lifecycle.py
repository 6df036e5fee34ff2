"""Lifecycle hooks: record every call in the database and publish it live.

Celery's prefork pool fires ``task_received`` and ``task_revoked`` in the
parent and prerun/postrun/failure/retry in the child; the recorder and the
publisher are both fork-aware, so one ``Lifecycle`` serves both sides.
Hooks never raise into Celery: a hook failure must not fail the call.
"""
from __future__ import annotations

import json
import logging
from typing import Any

from celery import signals

from pyfi.enums import EventName
from pyfi.messaging.pubsub import Channel, build_message, channel_name
from pyfi.worker.spec import SocketSpec, WorkerSpec

log = logging.getLogger("pyfi.worker")

#: message headers pyfi adds to a call (read back from the request)
SOCKET_HEADER = "pyfi_socket"
PLUG_HEADER = "pyfi_plug"
TASKPARENT_HEADER = "pyfi_taskparent"


def header(request: Any, name: str) -> Any:
    """A custom header from a worker Request (parent) or a task Context (child)."""
    data = getattr(request, "request_dict", None) or getattr(request, "_request_dict", None)
    if isinstance(data, dict):
        return data.get(name)
    return getattr(request, name, None)


class Lifecycle:
    def __init__(self, spec: WorkerSpec, recorder: Any, publisher: Any, app: Any, forwarder: Any = None) -> None:
        self.spec, self.recorder, self.publisher, self.app = spec, recorder, publisher, app
        self.forwarder = forwarder  # pyfi.worker.plugs.Forwarder: results and errors along plugs
        self.task_names = {s.task_name for s in spec.sockets}

    def connect(self) -> None:
        signals.task_received.connect(self.on_received, weak=False)
        signals.task_prerun.connect(self.on_prerun, weak=False)
        signals.task_postrun.connect(self.on_postrun, weak=False)
        signals.task_failure.connect(self.on_failure, weak=False)
        signals.task_retry.connect(self.on_retry, weak=False)
        signals.task_revoked.connect(self.on_revoked, weak=False)
        signals.worker_process_shutdown.connect(self.on_child_exit, weak=False)

    def on_child_exit(self, **_: Any) -> None:
        """Prefork children skip atexit: write what they recorded before they go."""
        self.recorder.stop()

    # -- helpers ----------------------------------------------------------------------
    def socket_of(self, request: Any, task_name: str) -> SocketSpec | None:
        socket_id = header(request, SOCKET_HEADER)
        candidates = self.spec.sockets_for_task(task_name)
        for socket in candidates:
            if socket.id == socket_id:
                return socket
        return candidates[0] if candidates else None

    def publish(self, socket: SocketSpec | None, state: EventName | str, **fields: Any) -> None:
        if socket is None or self.publisher is None:
            return
        room = self.spec.room_for(socket)
        self.publisher.publish(channel_name(room, Channel.TASK), build_message(room, str(state), **fields))

    def publish_output(self, task: Any, stream: str, line: str) -> None:
        """A line the function printed or logged, on the ``log`` channel."""
        socket = self.socket_of(task.request, task.name)
        if socket is None or self.publisher is None:
            return
        room = self.spec.room_for(socket)
        message = build_message(room, stream, Channel.LOG, message=line, call=task.request.id)
        self.publisher.publish(channel_name(room, Channel.LOG), message)

    def resultkey(self, task_id: str) -> str:
        backend = self.app.backend
        getter = getattr(backend, "get_key_for_task", None)
        key = getter(task_id) if getter else task_id
        return key.decode() if isinstance(key, bytes) else str(key)

    # -- parent process ---------------------------------------------------------------
    def on_received(self, sender: Any = None, request: Any = None, **_: Any) -> None:
        if request is None or request.name not in self.task_names:
            return
        try:
            socket = self.socket_of(request, request.name)
            self.recorder.received(
                request.id, request.name, socket.id if socket else None,
                parent=request.parent_id, tracking=request.root_id or request.id,
                taskparent=header(request, TASKPARENT_HEADER), plug_id=header(request, PLUG_HEADER),
            )
            self.publish(socket, EventName.RECEIVED)
        except Exception:  # noqa: BLE001 - a hook must never fail the call
            log.exception("recording received for %s failed", getattr(request, "id", "?"))

    def on_revoked(self, sender: Any = None, request: Any = None, **_: Any) -> None:
        if request is None or request.name not in self.task_names:
            return
        self.recorder.revoked(request.id, name=request.name)
        self.publish(self.socket_of(request, request.name), EventName.REVOKED)

    # -- child process ----------------------------------------------------------------
    def on_prerun(self, task_id: str = "", task: Any = None, **_: Any) -> None:
        if task is None or task.name not in self.task_names:
            return
        self.recorder.started(task_id, name=task.name, attempt=task.request.retries or 0)
        self.publish(self.socket_of(task.request, task.name), "running")

    def on_postrun(self, task_id: str = "", task: Any = None, retval: Any = None, state: str = "", **_: Any) -> None:
        if task is None or task.name not in self.task_names or state != "SUCCESS":
            return
        key = self.resultkey(task_id)
        self.recorder.finished(task_id, key, name=task.name, attempt=task.request.retries or 0)
        socket = self.socket_of(task.request, task.name)
        self.publish(socket, EventName.POSTRUN, module=self.spec.module, task=socket.function if socket else task.name,
                     resultkey=key, message=_json(retval), call=task_id)
        if self.forwarder is not None and socket is not None:
            self.forwarder.forward_result(task_id, task.request.root_id, socket.id, retval)

    def on_failure(self, task_id: str = "", exception: BaseException | None = None, sender: Any = None, **_: Any) -> None:
        if sender is None or sender.name not in self.task_names:
            return
        error = f"{type(exception).__name__}: {exception}"
        self.recorder.failed(task_id, error, name=sender.name, attempt=sender.request.retries or 0)
        socket = self.socket_of(sender.request, sender.name)
        self.publish(socket, EventName.FAILURE, message=error, call=task_id)
        if self.forwarder is not None and socket is not None:  # task_failure fires once the retries are spent
            self.forwarder.forward_error(task_id, sender.request.root_id, socket.id, exception)

    def on_retry(self, request: Any = None, reason: Any = None, sender: Any = None, **_: Any) -> None:
        if sender is None or sender.name not in self.task_names or request is None:
            return
        self.recorder.retried(request.id, str(reason), name=sender.name, attempt=request.retries or 0)
        self.publish(self.socket_of(request, sender.name), EventName.RETRY, message=str(reason), call=request.id)


def _json(value: Any) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return json.dumps(repr(value))
