"""Plugs: forward a finished call's result (or final error) to the target sockets.

Runs in the prefork child right after the source call ends (``Lifecycle``
calls :meth:`Forwarder.forward_result` once the result is stored and
:meth:`Forwarder.forward_error` from ``task_failure``, which fires only once
the retries are spent).

- Plugs are read from the database, not from the worker's start-up spec:
  they can be added while workers run, so the table is re-read at most every
  :data:`REFRESH` seconds (a cheap, lazy cache, per child).
- A forwarded call goes to ``routes_for(plug.target)``: the target socket's
  queue type decides who gets it (direct: one of the target's workers;
  fanout/topic: a durable copy per matching socket of that queue).
- It carries parent = the source call, tracking = the source call's tracking
  (the flow id), plug = the plug id; its arguments are a list holding the
  value at the plug's position and None elsewhere.
- A target socket with ``wait`` is a join (see :mod:`pyfi.worker.joins`).
- A :class:`pyfi.flow.Routed` result goes only to the plugs it names.
- ERROR plugs carry ``{"type", "message", "call"}`` of the failure.

Hooks must never fail a call: every error here is logged, not raised.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any, Sequence

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from pyfi.config import Settings
from pyfi.core.tasks import send
from pyfi.db.engine import get_engine, session_scope
from pyfi.db.models import Plug, Queue, Socket
from pyfi.enums import PlugType
from pyfi.flow import Routed
from pyfi.messaging.routing import Route, routes_for
from pyfi.worker import joins

log = logging.getLogger("pyfi.worker")

#: seconds a child trusts its copy of the plug table
REFRESH = 2.0
#: tries of one forward (database or broker briefly away), with these pauses
BACKOFF = (0.2, 1.0)


@dataclass(frozen=True)
class Wire:
    """One plug, resolved for sending."""

    id: str
    name: str
    type: PlugType
    source_id: str
    position: int
    target_id: str
    target: str
    wait: bool
    positions: tuple[int, ...]  # every position plugged into the target: what a join waits for
    routes: tuple[Route, ...]


def load_wires(db_url: str, socket_ids: Sequence[str]) -> dict[str, list[Wire]]:
    """The plugs leaving ``socket_ids``, by source socket id, in name order."""
    if not any_plugs(db_url, socket_ids):
        return {}  # the common case, re-checked every REFRESH s by every process: a tenth of the full load's CPU
    target = selectinload(Plug.target)
    with session_scope(db_url) as session:
        plugs = session.scalars(
            select(Plug).where(Plug.source_id.in_(list(socket_ids))).order_by(Plug.name).options(
                target.selectinload(Socket.task),
                target.selectinload(Socket.plugs_in),
                target.selectinload(Socket.queue).selectinload(Queue.sockets).selectinload(Socket.task),
            ))
        wires: dict[str, list[Wire]] = {}
        for plug in plugs:
            wires.setdefault(plug.source_id, []).append(_wire(plug))
    return wires


def any_plugs(db_url: str, socket_ids: Sequence[str]) -> bool:
    query = select(Plug.id).where(Plug.source_id.in_(list(socket_ids))).limit(1)
    with get_engine(db_url).connect() as conn:
        return conn.execute(query).first() is not None


def _wire(plug: Plug) -> Wire:
    target = plug.target
    positions = tuple(sorted({p.position for p in target.plugs_in}))
    return Wire(plug.id, plug.name, PlugType(plug.type), plug.source_id, plug.position, target.id, target.name,
                bool(target.wait), positions, tuple(routes_for(target)))


def args_at(position: int, value: Any) -> list[Any]:
    """The argument list of a call fed at one position: None before it."""
    return [None] * position + [value]


def error_payload(call_id: str, exc: BaseException | None) -> dict[str, Any]:
    return {"type": type(exc).__name__ if exc is not None else "Error", "message": str(exc), "call": call_id}


class Forwarder:
    """Sends along the plugs of one worker's sockets (one instance, fork-aware)."""

    def __init__(self, settings: Settings, socket_ids: Sequence[str], refresh: float = REFRESH, signer: Any = None) -> None:
        """``signer``: the processor's (:mod:`pyfi.messaging.signing`): what goes along a plug is signed with it."""
        self.settings, self.socket_ids, self.refresh, self.signer = settings, tuple(socket_ids), refresh, signer
        self._wires: dict[str, list[Wire]] = {}
        self._loaded_at = float("-inf")
        self._failing = False  # the last read of the plugs failed: said once, not at every refresh
        self._pid = -1
        self._app: Any = None

    # -- entry points (from Lifecycle, in the child) ---------------------------------
    def forward_result(self, call_id: str, tracking: str | None, socket_id: str, value: Any) -> None:
        wires = [w for w in self.wires(socket_id) if w.type == PlugType.RESULT]
        if isinstance(value, Routed):
            wires = self._routed(wires, value, call_id)
        for wire in wires:
            self._forward(wire, value[wire.name] if isinstance(value, Routed) else value, call_id, tracking)

    def forward_error(self, call_id: str, tracking: str | None, socket_id: str, exc: BaseException | None) -> None:
        for wire in self.wires(socket_id):
            if wire.type == PlugType.ERROR:
                self._forward(wire, error_payload(call_id, exc), call_id, tracking)

    # -- plug table -----------------------------------------------------------------
    def wires(self, socket_id: str) -> list[Wire]:
        if time.monotonic() - self._loaded_at > self.refresh:
            try:
                self._wires = load_wires(self.settings.db, self.socket_ids)
                if self._failing:
                    log.warning("reading plugs again")
                self._failing = False
            except Exception:  # noqa: BLE001 - keep the last good table; try again next call
                if not self._failing:
                    log.exception("reading plugs failed; using the previous table until a read succeeds")
                self._failing = True
            self._loaded_at = time.monotonic()
        return self._wires.get(socket_id, [])

    def _routed(self, wires: list[Wire], value: Routed, call_id: str) -> list[Wire]:
        unknown = set(value) - {w.name for w in wires}
        if unknown:
            log.warning("call %s routed to %s, which are not RESULT plugs of its socket", call_id, sorted(unknown))
        return [w for w in wires if w.name in value]

    # -- sending --------------------------------------------------------------------
    def _forward(self, wire: Wire, value: Any, call_id: str, tracking: str | None) -> None:
        tracking = tracking or call_id
        for pause in (*BACKOFF, None):
            try:
                self._deliver(wire, value, call_id, tracking)
                return
            except Exception:  # noqa: BLE001 - a hook must never fail the call it follows
                if pause is None:
                    log.exception("plug %s: forwarding call %s to %s failed", wire.name, call_id, wire.target)
                    return
                log.warning("plug %s: forwarding call %s failed; retrying in %.1f s", wire.name, call_id, pause)
                time.sleep(pause)

    def _deliver(self, wire: Wire, value: Any, call_id: str, tracking: str) -> None:
        if not wire.routes:
            log.warning("plug %s: no socket consumes %s's queue; nothing sent", wire.name, wire.target)
            return
        if not wire.wait:
            self._send(wire, args_at(wire.position, value), call_id, tracking)
            return
        with session_scope(self.settings.db) as session:
            joins.arrive(session, socket_id=wire.target_id, positions=wire.positions, tracking=tracking,
                         position=wire.position, call_id=call_id, value=value,
                         send=lambda args, parent: self._send(wire, args, parent, tracking))

    def _send(self, wire: Wire, args: list[Any], parent: str, tracking: str) -> list[str]:
        sent = send(self.app, list(wire.routes), args, parent=parent, tracking=tracking, plug=wire.id,
                    taskparent=parent)
        return [call.id for call in sent]

    @property
    def app(self) -> Any:
        """This process's Celery app for sending: made lazily, after the fork."""
        if self._pid != os.getpid():
            from pyfi.messaging.app import make_app

            self._app, self._pid = make_app(self.settings, main="pyfi.plugs", signer=self.signer), os.getpid()
        return self._app
