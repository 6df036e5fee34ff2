"""What one node should run, and with how many worker processes.

- A processor pinned to the node (``-h``) runs there, and only there.
- A processor with deployments (placed by a scheduler, or added by hand
  with ``pyfi add deployment``) runs on the nodes its deployments name,
  each with the deployment's worker processes (``cpus``).
- A processor with neither runs on every node that belongs to no scheduler
  (a scheduler's nodes run only what it places).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session, selectinload

from pyfi.db.models import Deployment, Node, Processor, Socket, scheduler_nodes


@dataclass
class Wanted:
    processors: list[Processor]
    #: processor id -> worker processes its deployments give this node (not there: the processor's own -w)
    sizes: dict[str, int] = field(default_factory=dict)


def desired(session: Session, node: str) -> Wanted:
    sizes: dict[str, int] = {}
    for deployment in session.scalars(select(Deployment).where(Deployment.hostname == node)):
        sizes[deployment.processor_id] = sizes.get(deployment.processor_id, 0) + deployment.cpus
    unpinned = or_(Processor.hostname.is_(None), Processor.hostname == "")
    unplaced = unpinned & ~exists().where(Deployment.processor_id == Processor.id)
    here = or_(Processor.hostname == node, Processor.id.in_(list(sizes)) & unpinned)
    if not scheduled(session, node):
        here = or_(here, unplaced)
    sockets = selectinload(Processor.sockets)  # (in one more query, with each socket's queue and task joined)
    query = select(Processor).where(here).options(sockets.joinedload(Socket.queue), sockets.joinedload(Socket.task))
    return Wanted(list(session.scalars(query)), sizes)


def scheduled(session: Session, node: str) -> bool:
    """Whether the node belongs to a scheduler."""
    query = select(scheduler_nodes.c.node_id).join(Node, Node.id == scheduler_nodes.c.node_id).where(Node.name == node)
    return session.scalar(query.limit(1)) is not None
