"""``pyfi scheduler start -n NAME``: the process that places a scheduler's processors.

Several may run for one scheduler (on different machines, for high
availability): exactly one places at a time, the holder of the scheduler's
lease (:mod:`pyfi.scheduler.lease`); the others wait and try the lease every
second, so one of them takes over within a few seconds of the holder's death.

The holder runs a placement round (:func:`pyfi.scheduler.placer.place_round`)
every ``interval`` seconds of the scheduler (``add scheduler -i``), and at
once when a command changes what placement depends on (``pyfi scheduler ...
add|remove``, ``pyfi node cordon|uncordon|drain``) rings its doorbell or
when the set of its live nodes changes (it looks every second: an agent
started, or one's heartbeat went stale). It logs each move and rings the
agents' doorbell so that they start and stop workers at once. SIGTERM or
Ctrl-C stops it, releasing the lease.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from pyfi.config import Settings
from pyfi.core.network import namespace
from pyfi.db.engine import session_scope
from pyfi.db.models import Scheduler
from pyfi.errors import NotFound, PyfiError
from pyfi.messaging.doorbell import AGENTS, SCHEDULERS, Doorbell, ring
from pyfi.scheduler.lease import Lease
from pyfi.scheduler.placer import Move, live_nodes, place_round

log = logging.getLogger("pyfi.scheduler")

#: seconds between a standby's attempts at the lease
STANDBY_POLL = 1.0


class SchedulerProcess:
    def __init__(self, settings: Settings, name: str, say: Callable[[str], None] = log.info) -> None:
        self.settings, self.name, self.say = settings, name, say
        self.lease = Lease(settings.db, f"scheduler:{name}")
        self.stop_event = threading.Event()
        self.next_round = 0.0
        self.holding: bool | None = None  # (unknown: the first step says which it is)
        self.live: set[str] = set()  # the scheduler's live nodes at the last round
        self.channels = ""  # the network's pub/sub prefix

    def run(self) -> None:
        with session_scope(self.settings.db) as session:
            self.find(session)
            self.channels = namespace(session)
        doorbell = Doorbell(self.settings.pubsub, self.channels, SCHEDULERS)
        try:
            while not self.stop_event.is_set():
                self.step()
                if doorbell.wait(min(STANDBY_POLL, self.until_round()) if self.holding else STANDBY_POLL):
                    self.next_round = 0.0  # something placement depends on changed: place now
        finally:
            doorbell.close()
            self.lease.release()

    def step(self) -> None:
        """Take the lease if it is free; place if a round is due."""
        holding = self.lease.acquire()
        if holding != self.holding:
            self.holding = holding
            self.say(f"scheduler {self.name}: {'placing (holds the lease)' if holding else 'standing by'}")
        if holding and (time.monotonic() >= self.next_round or self.live_changed()):
            self.round()

    def live_changed(self) -> bool:
        with session_scope(self.settings.db) as session:
            return live_nodes(session, self.find(session).nodes) != self.live

    def round(self) -> list[Move]:
        try:
            with session_scope(self.settings.db) as session:
                scheduler = self.find(session)
                self.next_round = time.monotonic() + scheduler.interval
                self.live = live_nodes(session, scheduler.nodes)
                moves = place_round(session, scheduler) if scheduler.enabled else []
        except PyfiError as exc:
            self.say(f"scheduler {self.name}: placement round failed: {exc}")
            self.next_round = time.monotonic() + STANDBY_POLL
            return []
        for move in moves:
            self.say(f"scheduler {self.name}: {move}")
        if moves:
            ring(self.settings.pubsub, "placement", self.channels, AGENTS)
        return moves

    def until_round(self) -> float:
        return max(self.next_round - time.monotonic(), 0.05)

    def find(self, session) -> Scheduler:  # noqa: ANN001 - a Session
        scheduler = session.scalar(select(Scheduler).where(Scheduler.name == self.name)
                                   .options(selectinload(Scheduler.nodes)))
        if scheduler is None:
            raise NotFound(f"no scheduler named {self.name!r}", "add one with `pyfi add scheduler -n NAME`")
        return scheduler
