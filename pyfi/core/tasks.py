"""Sending calls to sockets and waiting for their results."""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from pyfi.core.access import Actor, require
from pyfi.core.lookup import by_name
from pyfi.db.models import Socket
from pyfi.enums import Right
from pyfi.errors import CallFailed, CallTimeout
from pyfi.messaging.routing import Route, kombu_queue, routes_for



@dataclass(frozen=True)
class SentCall:
    id: str
    route: Route


def parse_data(text: str | None) -> Any:
    """JSON when it parses, else the plain string (so shell pipes just work)."""
    if text is None:
        return None
    stripped = text.rstrip("\n")
    try:
        return json.loads(stripped)
    except ValueError:
        return stripped


def plan(session: Session, actor: Actor, socket_name: str, routing_key: str | None = None) -> list[Route]:
    require(session, actor, Right.RUN_TASK)
    socket = by_name(session, Socket, socket_name, "socket")
    return routes_for(socket, routing_key)


def send(app: Any, routes: list[Route], args: list[Any], parent: str | None = None, tracking: str | None = None,
         plug: str | None = None, taskparent: str | None = None, call_id: str | None = None,
         kwargs: dict[str, Any] | None = None) -> list[SentCall]:
    """Publish one call per route, declaring each broker queue first (``call_id``: the id of a call to one route)."""
    if call_id is not None and len(routes) != 1:
        raise ValueError("a call id names one call: give one route")
    sent = []
    for route in routes:
        this_id = call_id or str(uuid.uuid4())  # (every copy of a fanout or topic call is a call of its own)
        queue = kombu_queue(route.broker_queue)
        app.send_task(
            route.task_name, args=args, kwargs=kwargs or {}, task_id=this_id, queue=queue, routing_key=route.broker_queue,
            declare=[queue], root_id=tracking or (None if parent else this_id), parent_id=parent,
            headers=route.headers(plug, taskparent),
        )
        sent.append(SentCall(this_id, route))
    return sent


def wait(app: Any, call: SentCall, timeout: float | None) -> Any:
    """The call's result; CallFailed or CallTimeout otherwise."""
    from celery.exceptions import TimeoutError as CeleryTimeout

    result = app.AsyncResult(call.id)
    try:
        value = result.get(timeout=timeout, propagate=False, interval=0.05)
    except CeleryTimeout as exc:
        raise CallTimeout(f"call {call.id} to {call.route.socket_name} did not finish within {timeout} s",
                          f"it stays queued and runs when a worker takes it; to stop it: pyfi task cancel --id "
                          f"{call.id}; see `pyfi ls processors`, or raise --timeout") from exc
    if result.failed():
        raise CallFailed(f"call {call.id} to {call.route.socket_name} failed: {type(value).__name__}: {value}",
                         f"see `pyfi ls call --id {call.id}`")
    return value
