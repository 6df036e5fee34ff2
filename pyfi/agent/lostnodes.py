"""A lost node's calls move on: a live agent gives back what the lost node's workers held (Redis).

When an agent and its workers die together (the machine is gone), nobody is
left to give their calls back, and Redis would hand them out again only
after its visibility timeout (300 s). Every worker of an agent notes what
it holds under ``<agent>/<run directory>`` (:func:`pyfi.worker.main.hold_as`),
so once an agent's heartbeat is stale (:data:`pyfi.core.liveness.LOST_AFTER`)
a live agent puts back everything held under its name, and the calls run
on the nodes still alive within a few heartbeats. Each call goes back once
(:func:`pyfi.messaging.redis_transport.restore_held` checks its holder as
it restores it).

Two guards keep a slow agent's calls where they are: an agent judges
others only once its own database has answered for twice the time that
makes an agent lost (after a database outage every heartbeat is stale for
a moment), and only the agents it saw alive before. Workers of a lost
agent still running (their agent alone was killed) stop taking calls
after :data:`pyfi.worker.control.ORPHAN_PAUSE` seconds; one that was
running a call given back finishes it too (a call runs at least once).
"""
from __future__ import annotations

import logging
import time
from sqlalchemy import select
from sqlalchemy.orm import Session

from pyfi.config import Settings
from pyfi.core.liveness import LOST_AFTER, effective_status
from pyfi.db.models import Agent
from pyfi.enums import AgentStatus

log = logging.getLogger("pyfi.agent")


class LostNodes:
    """Gives back, once per loss, the calls held by the workers of agents seen lost."""

    def __init__(self, settings: Settings, name: str) -> None:
        self.settings, self.name = settings, name
        self.seen_alive: set[str] = set()
        self.handled: set[str] = set()

    def check(self, session: Session, steady_since: float) -> list[str]:
        """Give back the calls of agents lost since the last check; their names."""
        if not self.settings.broker.startswith("redis://"):
            return []
        statuses = {a.name: effective_status(a) for a in session.scalars(select(Agent)) if a.name != self.name}
        lost = {name for name, status in statuses.items() if status == AgentStatus.LOST}
        self.handled &= lost  # one that came back may be lost again later
        due = sorted((lost & self.seen_alive) - self.handled) if time.monotonic() - steady_since > 2 * LOST_AFTER else []
        self.seen_alive = {name for name, status in statuses.items() if status == AgentStatus.RUNNING} | (
            self.seen_alive & lost)
        for name in due:
            self.give_back(name)
            self.handled.add(name)
        return due

    def give_back(self, agent: str) -> None:
        from pyfi.messaging.app import make_app
        from pyfi.messaging.redis_transport import give_back_prefix

        try:
            with make_app(self.settings).connection_for_write() as connection:
                given = give_back_prefix(connection, f"{agent}/")
        except Exception as exc:  # noqa: BLE001 - the broker: its visibility timeout still gives them back, later
            log.warning("cannot give back the calls of lost agent %s now: %s", agent, exc)
            return
        log.warning("agent %s is lost: gave back %d call(s) its workers held", agent, given)

