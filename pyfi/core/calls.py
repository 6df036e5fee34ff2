"""Reading calls and their lifecycle events (the runtime writes them).

The flow views (tree, graph, flow table) live in :mod:`pyfi.core.provenance`.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from pyfi.core.access import Actor, require
from pyfi.core.lookup import by_id, by_name
from pyfi.core.objects import Page, paged
from pyfi.db.base import utcnow
from pyfi.db.models import Call, Plug, Socket, call_parents
from pyfi.enums import CallState, Right, parse_enum
from pyfi.errors import InvalidInput, NotFound

AGO = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.IGNORECASE)
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class CallFilter:
    """``ls calls`` filters; every one given must match."""

    socket: str | None = None
    state: str | None = None
    since: str | None = None
    tracking: str | None = None


def parse_since(text: str, now: dt.datetime | None = None) -> dt.datetime:
    """``10m``/``2h``/``3d``/``30s``/``1w`` ago, or an ISO time; naive UTC like the stored times.

    A time without a zone is UTC, as every time pyfi shows is.
    """
    match = AGO.match(text)
    if match:
        return (now or utcnow()) - dt.timedelta(seconds=int(match[1]) * UNIT_SECONDS[match[2].lower()])
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise InvalidInput(f"--since {text!r} is neither a duration nor an ISO time",
                           "e.g. --since 10m, --since 2h, or --since 2024-05-01T12:00") from exc
    if when.tzinfo is not None:
        when = when.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return when


def list_calls(session: Session, actor: Actor, page: int = 1, rows: int = 10, ascend: bool = False,
               where: CallFilter | None = None) -> Page:
    """Calls, newest update first (or oldest with ``ascend``), filtered, one page at a time."""
    require(session, actor, Right.READ)
    query = select(Call).options(selectinload(Call.socket).selectinload(Socket.task))
    where = where or CallFilter()
    if where.socket:
        query = query.where(Call.socket_id == by_name(session, Socket, where.socket, "socket").id)
    if where.state:
        query = query.where(Call.state == parse_enum(CallState, where.state, "call state"))
    if where.since:
        query = query.where(Call.lastupdated >= parse_since(where.since))
    if where.tracking:
        query = query.where(Call.tracking == where.tracking)
    return paged(session, query, Call.lastupdated, page, rows, ascend)


def get_call(session: Session, actor: Actor, ident: str | None = None, name: str | None = None) -> Call:
    """One call with its events; ``name`` picks the most recent call of that name."""
    require(session, actor, Right.READ)
    if ident:
        return by_id(session, Call, ident, "call")
    if name:
        call = session.scalar(select(Call).where(Call.name == name).order_by(Call.lastupdated.desc()).limit(1))
        if call is None:
            raise NotFound(f"no call named {name!r}", "list them with `pyfi ls calls`")
        return call
    raise InvalidInput("which call? none was named", "give --id ID or -n/--name NAME")


@dataclass(frozen=True)
class Provenance:
    """Where a call came from: the seed's Task / Task Parent / Flow Parent, plus flow and plug."""

    id: str
    taskparent: str | None
    parents: list[str]  # every call whose result fed it: one, or a join's sources
    tracking: str | None
    plug: str | None  # the name of the plug that sent it

    @property
    def parent(self) -> str | None:
        return "\n".join(self.parents) or None


def provenance_of(session: Session, call: Call) -> Provenance:
    extra = session.scalars(select(call_parents.c.parent_id).where(call_parents.c.call_id == call.id)).all()
    parents = list(dict.fromkeys(([call.parent] if call.parent else []) + sorted(extra)))
    plug = session.scalar(select(Plug.name).where(Plug.id == call.plug_id)) if call.plug_id else None
    return Provenance(call.id, call.taskparent, parents, call.tracking, plug)
