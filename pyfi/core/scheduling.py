"""The operations on schedulers and nodes that are not plain add/update/delete.

- A scheduler's nodes: ``pyfi scheduler -n NAME add|remove --node NODE``.
  A node belongs to one scheduler at most, so that what runs on it has one
  placer.
- ``pyfi node cordon|uncordon|drain -n NODE``: a cordoned node gets no new
  placements; a draining one is cordoned and everything placed on it moves
  away (its agent stops those workers gracefully, letting running calls end).

Each needs the right to update the object (its kind's right, and UPDATE for
another user's), as ``pyfi update`` does.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from pyfi.core.access import Actor, require, require_owner
from pyfi.core.lookup import by_name
from pyfi.db.models import Node, Scheduler, scheduler_nodes
from pyfi.enums import Right
from pyfi.errors import AlreadyExists, InUse, NotFound

#: node command -> (cordoned, draining) it sets
NODE_STATES = {"cordon": (True, False), "uncordon": (False, False), "drain": (True, True)}


def scheduler_of(session: Session, node: Node) -> Scheduler | None:
    query = select(Scheduler).join(scheduler_nodes, scheduler_nodes.c.scheduler_id == Scheduler.id).where(
        scheduler_nodes.c.node_id == node.id)
    return session.scalar(query)


def add_node(session: Session, actor: Actor, scheduler_name: str, node_name: str) -> Scheduler:
    scheduler = _changeable(session, actor, scheduler_name)
    node = by_name(session, Node, node_name, "node")
    other = scheduler_of(session, node)
    if other is scheduler:
        raise AlreadyExists(f"node {node_name!r} is one of scheduler {scheduler_name!r}'s already", "nothing to do")
    if other is not None:
        raise InUse(f"node {node_name!r} belongs to scheduler {other.name!r}: a node has one scheduler",
                    f"remove it there first: pyfi scheduler -n {other.name} remove --node {node_name}")
    scheduler.nodes.append(node)
    session.flush()
    return scheduler


def remove_node(session: Session, actor: Actor, scheduler_name: str, node_name: str) -> Scheduler:
    scheduler = _changeable(session, actor, scheduler_name)
    node = by_name(session, Node, node_name, "node")
    if node not in scheduler.nodes:
        raise NotFound(f"node {node_name!r} is not one of scheduler {scheduler_name!r}'s",
                       f"see `pyfi ls scheduler -n {scheduler_name}`")
    scheduler.nodes.remove(node)
    session.flush()
    return scheduler


def set_node_state(session: Session, actor: Actor, node_name: str, command: str) -> Node:
    """``cordon``, ``uncordon`` or ``drain`` a node."""
    require(session, actor, Right.UPDATE_NODE)
    node = by_name(session, Node, node_name, "node")
    require_owner(session, actor, node, "node", Right.UPDATE)
    node.cordoned, node.draining = NODE_STATES[command]
    session.flush()
    return node


def _changeable(session: Session, actor: Actor, name: str) -> Scheduler:
    require(session, actor, Right.UPDATE_SCHEDULER)
    scheduler = by_name(session, Scheduler, name, "scheduler")
    require_owner(session, actor, scheduler, "scheduler", Right.UPDATE)
    return scheduler
