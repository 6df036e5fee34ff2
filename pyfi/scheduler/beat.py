"""Timed sockets: a socket with ``-i N`` fires every N seconds, one with ``--cron EXPR`` on its schedule.

Once per tick for the whole network, however many agents run the processor:
every agent asks for the network's beat lease (:mod:`pyfi.scheduler.lease`)
and only its holder fires. Ticks are the multiples of the interval since
the epoch (``-i 2``: every even second), or the cron expression's times
(UTC). Each socket's last fired tick is kept in the database
(``socket_ticks``) and moved on with a compare-and-set before the call is
sent, so two holders (an old one that lost its lease and does not know it
yet) never fire one tick twice, and a new holder goes on from the last
tick: if the holder dies, at most one tick is missed. A socket fires only
while its processor has ``-b/--beat`` and is running; a tick missed
meanwhile is not made up for.

A fired call is an ordinary call, sent to the socket with no arguments (the
socket's function takes none, or has defaults) and signed with the
processor's key: recorded, published, and sent along plugs like any other.
Its id is derived from the socket and the tick (:func:`tick_call_id`), so
one tick is one call whoever fires it.
"""
from __future__ import annotations

import datetime as dt
import logging
import math
import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from pyfi.config import Settings
from pyfi.core.keys import processor_signer
from pyfi.core.tasks import send
from pyfi.db.base import utcnow
from pyfi.db.engine import session_scope
from pyfi.db.models import Processor, Socket, SocketTick
from pyfi.enums import ProcessorStatus
from pyfi.messaging.app import make_app
from pyfi.messaging.routing import socket_route
from pyfi.scheduler.lease import Lease

log = logging.getLogger("pyfi.scheduler")

#: the requested states of a processor whose timed sockets fire (while it runs)
RUN = (ProcessorStatus.READY, ProcessorStatus.RUNNING)
#: seconds between a non-holder's attempts at the beat's lease
STANDBY_POLL = 1.0
_EPOCH = dt.datetime(1970, 1, 1)


def latest_tick(socket: Any, now: dt.datetime) -> dt.datetime | None:
    """The socket's last tick at or before ``now`` (naive UTC); None for a socket that is not timed."""
    if socket.interval:
        seconds = (now - _EPOCH).total_seconds()
        return _EPOCH + dt.timedelta(seconds=math.floor(seconds / socket.interval) * socket.interval)
    if socket.cron:
        from croniter import croniter

        return croniter(socket.cron, now).get_prev(dt.datetime)
    return None


def next_tick(socket: Any, now: dt.datetime) -> dt.datetime | None:
    """When the socket fires next (naive UTC), were its processor running with ``-b``."""
    if socket.interval:
        return latest_tick(socket, now) + dt.timedelta(seconds=socket.interval)
    if socket.cron:
        from croniter import croniter

        return croniter(socket.cron, now).get_next(dt.datetime)
    return None


def tick_call_id(socket_id: str, tick: dt.datetime) -> str:
    """The id of the call a socket fires for a tick: one tick, one call id (``ls call --id`` finds it)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"pyfi:tick:{socket_id}:{tick.isoformat()}"))


@dataclass(frozen=True)
class Firing:
    socket: str
    tick: dt.datetime
    call: str


class Beat:
    """What an agent runs at each of its ticks: fire what is due, if it holds the beat."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.lease = Lease(settings.db, "beat")
        self.retry_at = 0.0
        self.holding = False  # (as of the last tick: what the agent's health endpoint shows)
        self.apps: dict[str, Any] = {}  # processor id -> an app that signs with its key

    def tick(self) -> list[Firing]:
        self.holding = self.lease.held() or self.take_lease()
        if not self.holding:
            return []
        with session_scope(self.settings.db) as session:
            due = self.claim_due(session, utcnow())
        return [self.fire(socket, tick) for socket, tick in due]

    def take_lease(self) -> bool:
        if time.monotonic() < self.retry_at:
            return False
        self.retry_at = time.monotonic() + STANDBY_POLL
        if not self.lease.acquire():
            return False
        log.info("this agent fires the network's timed sockets (it holds the beat)")
        return True

    def claim_due(self, session: Session, now: dt.datetime) -> list[tuple[Any, dt.datetime]]:
        """The timed sockets due to fire, their ticks moved on in the database (by compare-and-set) in this transaction."""
        due = []
        for socket in timed_sockets(session):
            tick = latest_tick(socket, now)
            last = session.get(SocketTick, socket.id)
            if last is None:
                session.add(SocketTick(socket_id=socket.id, last_tick=tick))  # counted from now: fires at its next tick
                continue
            if tick <= last.last_tick:
                continue
            moved = session.execute(update(SocketTick).where(SocketTick.socket_id == socket.id,
                                                             SocketTick.last_tick == last.last_tick)
                                    .values(last_tick=tick)).rowcount
            if moved:
                due.append((socket, tick))
        return due

    def fire(self, socket: Any, tick: dt.datetime) -> Firing:
        app = self.app_for(socket.processor_id)
        [call] = send(app, [socket_route(socket)], [], call_id=tick_call_id(socket.id, tick))
        log.info("timed socket %s fired for %s: call %s", socket.name, tick.isoformat(sep=" "), call.id)
        return Firing(socket.name, tick, call.id)

    def app_for(self, processor_id: str) -> Any:
        if processor_id not in self.apps:
            with session_scope(self.settings.db) as session:
                signer = processor_signer(session, processor_id)
            self.apps[processor_id] = make_app(self.settings, main="pyfi.beat", signer=signer)
        return self.apps[processor_id]

    def close(self) -> None:
        self.holding = False
        self.lease.release()
        for app in self.apps.values():
            app.close()
        self.apps.clear()


def timed_sockets(session: Session) -> list[Socket]:
    """Sockets with an interval or a cron schedule whose processor has ``-b/--beat`` and is running."""
    query = (select(Socket).join(Socket.processor)
             .where((Socket.interval.is_not(None)) | (Socket.cron.is_not(None)), Processor.beat.is_(True),
                    Processor.requested_status.in_(RUN), Processor.status == ProcessorStatus.RUNNING)
             .options(selectinload(Socket.task), selectinload(Socket.queue)))
    return list(session.scalars(query))
