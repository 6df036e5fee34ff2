"""One placement round of a scheduler: the deployments its nodes should have, written, and every move recorded.

What a scheduler places: processors that are not pinned to a node (``-h``)
and have no deployment added by hand (``pyfi add deployment``, which wins).
Where: its nodes whose agent is alive (a fresh heartbeat) and that are not
cordoned. A cordoned node keeps what it runs; a draining one gives it up.
How many: each processor's ``-w`` worker processes, spread or packed by the
scheduler's strategy (:mod:`pyfi.scheduler.placement`).

A node whose agent is lost has its share moved to live nodes at the next
round; when it comes back, BALANCED gives it its share again, and a node
that keeps its share keeps its workers (they are resized, not restarted).
Every change is a row of ``placements`` (``pyfi ls placements``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from pyfi.core.liveness import effective_status
from pyfi.db.models import Agent, Deployment, Node, Placement, Processor, Scheduler
from pyfi.enums import AgentStatus, Strategy
from pyfi.scheduler.placement import NodeRoom, place


@dataclass(frozen=True)
class Move:
    processor: str
    node: str
    before: int
    after: int
    reason: str

    def __str__(self) -> str:
        return f"{self.processor} on {self.node}: {self.before} -> {self.after} worker processes ({self.reason})"


def place_round(session: Session, scheduler: Scheduler) -> list[Move]:
    """Bring the scheduler's deployments to what its strategy says now; the moves made."""
    nodes = {n.name: n for n in scheduler.nodes}
    live = live_nodes(session, nodes.values())
    placing = {name for name in live if not nodes[name].cordoned}
    kept = {name for name in live if nodes[name].cordoned and not nodes[name].draining}
    processors = placeable(session)
    deployed = current(session, scheduler)
    wanted, fixed = {}, {}
    for processor in processors:
        fixed[processor.id] = {node: n for node, n in deployed.get(processor.id, {}).items() if node in kept}
        wanted[processor.id] = max(processor.workers - sum(fixed[processor.id].values()), 0)
    rooms = [NodeRoom(name, nodes[name].cpus or 1) for name in sorted(placing)]
    target = place(Strategy(scheduler.strategy), wanted, rooms, deployed)
    moves = []
    for processor in processors:
        after = {**target.get(processor.id, {}), **fixed[processor.id]}
        moves += apply(session, scheduler, processor, deployed.get(processor.id, {}), after, nodes, live)
    moves += forget_unplaceable(session, scheduler, {p.id for p in processors})
    return moves


def live_nodes(session: Session, nodes: Iterable[Node]) -> set[str]:
    """The names of ``nodes`` with an agent that runs processors and whose heartbeat is fresh."""
    agents = session.scalars(select(Agent).where(Agent.node_id.in_([n.id for n in nodes]))).all()
    ids = {a.node_id for a in agents if effective_status(a) == AgentStatus.RUNNING}
    return {n.name for n in nodes if n.id in ids}


def placeable(session: Session) -> list[Processor]:
    """Processors not pinned to a node and with no deployment added by hand, by name."""
    by_hand = select(Deployment.processor_id).where(Deployment.scheduler_id.is_(None))
    query = select(Processor).where((Processor.hostname.is_(None)) | (Processor.hostname == ""),
                                    Processor.id.not_in(by_hand)).order_by(Processor.name)
    return list(session.scalars(query))


def current(session: Session, scheduler: Scheduler) -> dict[str, dict[str, int]]:
    """processor id -> {node: worker processes} of this scheduler's deployments."""
    found: dict[str, dict[str, int]] = {}
    for deployment in session.scalars(select(Deployment).where(Deployment.scheduler_id == scheduler.id)):
        found.setdefault(deployment.processor_id, {})[deployment.hostname] = deployment.cpus
    return found


def apply(session: Session, scheduler: Scheduler, processor: Processor, before: dict[str, int],
          after: dict[str, int], nodes: dict[str, Node], live: set[str]) -> list[Move]:
    """Write one processor's deployments as ``after`` says; a :class:`Move` (and a placement row) per change."""
    rows = {d.hostname: d for d in session.scalars(select(Deployment).where(
        Deployment.scheduler_id == scheduler.id, Deployment.processor_id == processor.id))}
    moves = []
    for node in sorted(set(before) | set(after)):
        old, new = before.get(node, 0), after.get(node, 0)
        if old == new:
            continue
        moves.append(Move(processor.name, node, old, new, _why(node, old, new, nodes, live)))
        if new == 0:
            session.delete(rows[node])
        elif node in rows:
            rows[node].cpus = new
        else:
            session.add(Deployment(name=f"{processor.name}@{node}", processor_id=processor.id, hostname=node, cpus=new,
                                   scheduler_id=scheduler.id, owner=scheduler.owner))
    record(session, scheduler, moves)
    return moves


def forget_unplaceable(session: Session, scheduler: Scheduler, placeable_ids: set[str]) -> list[Move]:
    """Drop this scheduler's deployments of processors it no longer places (pinned, or placed by hand since)."""
    moves = []
    query = select(Deployment).where(Deployment.scheduler_id == scheduler.id,
                                     Deployment.processor_id.not_in(placeable_ids)).options(
        selectinload(Deployment.processor))
    for deployment in session.scalars(query):
        moves.append(Move(deployment.processor.name, deployment.hostname, deployment.cpus, 0,
                          "pinned or placed by hand"))
        session.delete(deployment)
    record(session, scheduler, moves)
    return moves


def record(session: Session, scheduler: Scheduler, moves: list[Move]) -> None:
    session.add_all(Placement(scheduler=scheduler.name, processor=m.processor, node=m.node, before=m.before,
                              after=m.after, reason=m.reason) for m in moves)
    session.flush()


def _why(node: str, old: int, new: int, nodes: dict[str, Node], live: set[str]) -> str:
    if node not in nodes:
        return "the node left the scheduler"
    if node not in live:
        return "its agent is lost"
    if nodes[node].draining:
        return "the node is draining"
    return "placed" if old == 0 else "rebalanced"
