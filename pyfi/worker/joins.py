"""Joins: a socket with ``wait`` runs once every plugged position has arrived.

Each arrival is one row of ``join_arrivals`` keyed by (tracking, target
socket, position), so pending joins live in the database: they survive a
worker restart and are shared by every worker that feeds the join. The
arrival that completes the set consumes it in the same transaction that
sends the joined call, under a lock on the target socket:

- PostgreSQL: a transaction-scoped advisory lock keyed by the target socket
  (``pg_advisory_xact_lock``), so two sources finishing at once on different
  workers take turns; in READ COMMITTED the second then sees the first's
  committed arrival. Unlike ``SELECT ... FOR UPDATE`` on the socket row, it
  needs no UPDATE right on ``sockets`` (row-level security would silently
  skip the lock for a worker login that does not own the socket) and never
  blocks an ``update socket``.
- SQLite: ``BEGIN IMMEDIATE`` takes the database's single write lock before
  anything is read, which serializes the same way.

Arrivals of different flows never meet: every query is scoped by tracking.
"""
from __future__ import annotations

import hashlib
import logging
from typing import Any, Callable, Sequence

from kombu.utils import json as kjson
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from pyfi.db.models import JoinArrival, call_parents

log = logging.getLogger("pyfi.worker")

#: sends the joined call: (args, parent call id) -> ids of the calls sent
Sender = Callable[[list[Any], str], Sequence[str]]


def lock_target(session: Session, socket_id: str) -> None:
    """Serialize every arrival at one join (see the module docstring)."""
    if session.get_bind().dialect.name == "sqlite":
        # pysqlite opens transactions lazily, at the first write; take the
        # write lock now, before the arrivals are read.
        session.connection().exec_driver_sql("BEGIN IMMEDIATE")
        return
    session.execute(select(func.pg_advisory_xact_lock(lock_key(socket_id))))


def lock_key(socket_id: str) -> int:
    """A signed 64-bit advisory-lock key for one join, namespaced to pyfi joins."""
    digest = hashlib.sha256(f"pyfi.join:{socket_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def arrive(session: Session, *, socket_id: str, positions: Sequence[int], tracking: str, position: int,
           call_id: str, value: Any, send: Sender) -> list[str] | None:
    """Record one argument for the join at ``socket_id``; fire it when complete.

    Returns the ids of the joined calls sent, or None while the join waits.
    The caller commits. The send happens before the commit, while the lock is
    held: a joined call is never lost; if that commit failed after the send,
    the consumed arrivals would stay behind as a stale, incomplete round.
    """
    lock_target(session, socket_id)
    pending = {a.position: a for a in session.scalars(
        select(JoinArrival).where(JoinArrival.tracking == tracking, JoinArrival.socket_id == socket_id))}
    if position in pending:
        # one value per position per round; the unique key (tracking, socket,
        # position) could not hold a second one anyway
        log.warning("join %s already holds position %d for flow %s: value of call %s dropped",
                    socket_id, position, tracking, call_id)
        return None
    if not set(positions) <= set(pending) | {position}:
        session.add(JoinArrival(tracking=tracking, socket_id=socket_id, position=position,
                                value=kjson.dumps(value), call_id=call_id))
        session.flush()
        return None
    values = {p: kjson.loads(a.value) if a.value is not None else None for p, a in pending.items()}
    values[position] = value
    args = [values.get(p) for p in range(max(values) + 1)]
    sources = [a.call_id for a in pending.values() if a.call_id] + [call_id]
    sent = list(send(args, call_id))
    rows = [{"call_id": sent_id, "parent_id": source} for sent_id in sent for source in dict.fromkeys(sources)]
    if rows:  # while the arrivals still wait: a worker's login may name only its calls or its joins' arrivals as parents
        session.execute(insert(call_parents), rows)
    if pending:
        session.execute(delete(JoinArrival).where(JoinArrival.id.in_([a.id for a in pending.values()])))
    return sent


def pending_for(session: Session, tracking: str) -> list[JoinArrival]:
    """The arrivals of one flow still waiting at joins (for inspection and tests)."""
    return list(session.scalars(select(JoinArrival).where(JoinArrival.tracking == tracking)
                                .order_by(JoinArrival.socket_id, JoinArrival.position)))
