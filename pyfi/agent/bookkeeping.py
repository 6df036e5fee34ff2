"""What the agent writes about itself: its ``workers`` rows, its heartbeat, and that it stopped.

This is a part of :class:`pyfi.agent.agent.Agent`; every method here but
:meth:`Bookkeeping.supervise` (its workers' sign that it is alive) needs
the database, and an outage (:mod:`pyfi.agent.outage`) goes on up to the
agent's loop, which tries again once the database answers.
"""
from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from pyfi.agent import node as node_rows
from pyfi.agent.lostnodes import LostNodes
from pyfi.agent.outage import DatabaseWatch
from pyfi.agent.supervisor import Handle
from pyfi.config import Settings
from pyfi.db.engine import session_scope
from pyfi.db.models import Agent as AgentRow
from pyfi.db.models import Processor, Worker
from pyfi.enums import AgentStatus, ProcessorStatus, WorkerStatus


class Bookkeeping:
    """The agent's rows; the attributes below are the agent's."""

    name: str
    settings: Settings
    workdir: Path
    row_status: AgentStatus
    monitor_only: bool
    handles: dict[str, Handle]
    concurrency: dict[str, int]
    last_beat: float
    supervised_at: float
    lost_nodes: LostNodes
    database: DatabaseWatch

    def observed_status(self, handle: Handle) -> ProcessorStatus:
        raise NotImplementedError

    def desired(self, session: Session) -> list[Processor]:
        raise NotImplementedError

    def processors_running(self) -> set[str]:
        raise NotImplementedError

    def sweep_logins(self, session: Session, keep: set[str]) -> None:
        raise NotImplementedError

    def hung(self, handle: Handle) -> bool:
        raise NotImplementedError

    def sync_worker_rows(self, session: Session) -> None:
        agent = session.scalar(select(AgentRow).where(AgentRow.name == self.name))
        if agent is None:
            return
        rows = {w.processor_id: w for w in session.scalars(select(Worker).where(Worker.agent_id == agent.id))}
        for processor_id, handle in self.handles.items():
            row = rows.pop(processor_id, None) or node_rows.new_worker_row(session, agent, processor_id, handle.processor,
                                                                           self.name)
            row.concurrency = self.concurrency.get(processor_id, row.concurrency)
            status = WorkerStatus.HUNG if self.hung(handle) else node_rows.worker_status(self.observed_status(handle))
            if (row.pid, row.status, row.commit) != (handle.pid, status, handle.commit):
                row.pid, row.status, row.commit, row.workdir = handle.pid, status, handle.commit, handle.run_dir
        if rows:
            session.execute(delete(Worker).where(Worker.id.in_([r.id for r in rows.values()])))

    def supervise(self) -> None:
        """About every second, tell each of its workers that their agent is alive (database or not)."""
        if time.monotonic() - self.supervised_at >= 1.0:
            self.supervised_at = time.monotonic()
            for handle in list(self.handles.values()):
                handle.renew_supervision()

    def heartbeat_if_due(self) -> None:
        if time.monotonic() - self.last_beat < node_rows.HEARTBEAT:
            return
        self.last_beat = time.monotonic()
        with session_scope(self.settings.db) as session:
            agent = session.scalar(select(AgentRow).where(AgentRow.name == self.name))
            if agent is not None:
                node_rows.beat(session, agent, self.workdir, self.row_status)
            if not self.monitor_only:  # (a lost node's workers held calls: they move on)
                self.lost_nodes.check(session, self.database.steady_since)

    def mark_stopped(self) -> None:
        """Its workers are gone: the agent is stopped, its processors no other agent runs too, and their logins go."""
        with session_scope(self.settings.db) as session:
            agent = session.scalar(select(AgentRow).where(AgentRow.name == self.name))
            if agent is not None:
                agent.status = AgentStatus.STOPPED
                session.execute(delete(Worker).where(Worker.agent_id == agent.id))
            if not self.monitor_only:
                node_rows.release(session, self.name, self.desired(session))
            self.sweep_logins(session, self.processors_running())  # the workers are gone: so are their logins
