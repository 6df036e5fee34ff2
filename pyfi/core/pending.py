"""Calls recorded by their sender as ``pending``: queued work shows before any worker takes it.

The sender (the CLI, the client) writes one row per call it published,
after publishing, with ``INSERT ... ON CONFLICT DO NOTHING``: a worker that
recorded the call first keeps its row, and the worker's first record moves
a pending row on (:mod:`pyfi.worker.rows`). On PostgreSQL a user's login may
insert only that: a pending call of a socket, sent by themselves, holding
RUN_TASK (migration 0016).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Iterable

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from pyfi.db.base import utcnow
from pyfi.db.models import Call
from pyfi.enums import CallState


@dataclass(frozen=True)
class Pending:
    """One call as its sender published it."""

    id: str
    task_name: str
    socket_id: str
    tracking: str | None = None
    parent: str | None = None
    sent: dt.datetime | None = None


def record_pending(session: Session, sender: str, calls: Iterable[Pending]) -> int:
    """Insert the calls not recorded yet as pending, sent by ``sender``; how many rows were given."""
    now = utcnow()
    rows = [_row(call, sender, call.sent or now) for call in calls]
    if not rows:
        return 0
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[session.get_bind().dialect.name]
    session.execute(insert(Call.__table__).on_conflict_do_nothing(index_elements=["id"]), rows)
    return len(rows)


def record_untaken(session: Session, sender: str, calls: Iterable[Pending]) -> int:
    """:func:`record_pending` for the calls no worker has recorded yet (one read, then fewer writes)."""
    from sqlalchemy import select

    calls = list(calls)
    known = set(session.scalars(select(Call.id).where(Call.id.in_([call.id for call in calls])))) if calls else set()
    return record_pending(session, sender, [call for call in calls if call.id not in known])


def of_sent(sent: Iterable, tracking: str | None = None, parent: str | None = None) -> list[Pending]:
    """The :class:`Pending` of calls :func:`pyfi.core.tasks.send` published."""
    return [Pending(call.id, call.route.task_name, call.route.socket_id, tracking, parent) for call in sent]


def _row(call: Pending, sender: str, when: dt.datetime) -> dict:
    return {"id": call.id, "name": call.task_name, "socket_id": call.socket_id, "state": CallState.PENDING,
            "sender": sender, "tracking": call.tracking or (None if call.parent else call.id), "parent": call.parent,
            "created": when, "lastupdated": when}
