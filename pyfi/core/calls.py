"""Reading calls and their lifecycle events (the runtime writes them).

The flow views (tree, graph, flow table) live in :mod:`pyfi.core.provenance`.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, selectinload

from pyfi.core.access import Actor, require
from pyfi.core.lookup import by_name
from pyfi.core.paging import Page, paged
from pyfi.db.base import utcnow
from pyfi.db.models import Call, Plug, Socket, call_parents
from pyfi.enums import CallState, Right, parse_enum
from pyfi.errors import CallTimeout, InvalidInput, NotFound, PyfiError

if TYPE_CHECKING:
    from pyfi.core.context import CoreContext

#: the shortest id prefix ``ls call --id`` and ``task cancel --id`` accept
MIN_PREFIX = 4
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
    try:
        if match:
            return (now or utcnow()) - dt.timedelta(seconds=int(match[1]) * UNIT_SECONDS[match[2].lower()])
        when = dt.datetime.fromisoformat(text.strip())
        if when.tzinfo is not None:
            when = when.astimezone(dt.timezone.utc).replace(tzinfo=None)
    except ValueError as exc:
        raise InvalidInput(f"--since {text!r} is neither a duration nor an ISO time",
                           "e.g. --since 10m, --since 2h, or --since 2024-05-01T12:00") from exc
    except OverflowError as exc:  # further than the calendar goes
        raise InvalidInput(f"--since {text!r} is outside the calendar (years 1 to 9999)",
                           "give a shorter duration or another time") from exc
    return when


def list_calls(session: Session, actor: Actor, page: int = 1, rows: int = 10, ascend: bool = False,
               where: CallFilter | None = None, after: str | None = None) -> Page:
    """Calls, newest update first (or oldest with ``ascend``), filtered, one page at a time (or after call ``after``)."""
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
    return paged(session, query, Call.lastupdated, page, rows, ascend, after)


def get_call(session: Session, actor: Actor, ident: str | None = None, name: str | None = None) -> Call:
    """One call with its events; ``name`` picks the most recent call of that name."""
    require(session, actor, Right.READ)
    if ident:
        return find_call(session, ident)
    if name:
        call = session.scalar(select(Call).where(Call.name == name).order_by(Call.lastupdated.desc()).limit(1))
        if call is None:
            raise NotFound(f"no call named {name!r}", "list them with `pyfi ls calls`")
        return call
    raise InvalidInput("which call? none was named", "give --id ID or -n/--name NAME")


def find_call(session: Session, ident: str) -> Call:
    """The call of that id, or of the one id that starts with it (at least :data:`MIN_PREFIX` characters)."""
    call = session.get(Call, ident)
    if call is not None:
        return call
    found = [] if len(ident) < MIN_PREFIX else list(session.scalars(
        select(Call).where(Call.id.startswith(ident, autoescape=True)).limit(2)))
    if len(found) == 1:
        return found[0]
    if found:
        raise InvalidInput(f"more than one call id starts with {ident!r}", "give more of the id")
    raise NotFound(f"no call with id {ident!r} is recorded",
                   "a call is recorded when it is sent (by the CLI or the client) or when a worker takes it; "
                   "see `pyfi ls calls`")


@dataclass(frozen=True)
class Provenance:
    """Where a call came from: the Task / Task Parent / Flow Parent of the original pyfi documentation, plus flow and plug."""

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


#: what a call's row says about a call its sender stopped waiting for
UNFINISHED = {
    CallState.PENDING: "is still queued and will run when a worker takes it",
    CallState.RECEIVED: "was received by a worker and has not started yet",
    CallState.RUNNING: "is still running",
    CallState.RETRY: "is waiting to be retried",
    CallState.REFUSED: "was refused by its worker and will not run (its events say why)",
}


def unfinished(session: Session, call_ids: list[str]) -> Call | None:
    """The first of these calls (in the given order) that has not ended, if any."""
    query = select(Call).where(Call.id.in_(call_ids), Call.state.in_(list(UNFINISHED)))
    rows = {call.id: call for call in session.scalars(query)}
    return next((rows[call_id] for call_id in call_ids if call_id in rows), None)


def why_queued(call: Call) -> str:
    """Why a pending call has not run yet: its processor's state, as ``ls processors`` shows it."""
    from pyfi.core.liveness import shown_processor_status

    processor = call.socket.processor if call.socket is not None else None
    if processor is None:
        return "its socket is gone: no worker will take it"
    status, error = shown_processor_status(processor)
    if str(processor.requested_status) in ("paused", "stopped"):  # asked for: what it comes to
        status = processor.requested_status
    name = processor.name
    return {
        "running": f"processor {name} is running: the call waits behind others in its queue",
        "paused": f"processor {name} is paused (pyfi proc resume -n {name})",
        "stopped": f"processor {name} is stopped (pyfi proc start -n {name})",
        "error": f"processor {name} is in error: {error}",
        "lost": f"processor {name} is lost: {error}",
    }.get(str(status), f"processor {name} is {status}: no worker runs it yet (see pyfi ls agents)")


def explain_timeout(context: CoreContext, error: CallTimeout, call_ids: list[str], more_time: str) -> CallTimeout:
    """``error`` with a hint from the call rows: a call still running is no sign of a missing agent.

    Only the state of calls the user just sent is read, so no right is asked for.
    """
    try:
        with context.session() as session:
            call = unfinished(session, call_ids)
            why = why_queued(call) if call is not None and call.state == CallState.PENDING else None
    except (PyfiError, SQLAlchemyError):  # the database is down too: the original hint still holds
        return error
    if call is None:
        return error
    subject = "it" if len(call_ids) == 1 else f"call {call.id}"
    said = f"{subject} {UNFINISHED[CallState(call.state)]}" + (f"; {why}" if why else "")
    return CallTimeout(error.message, f"{said}; to stop it: pyfi task cancel --id {call.id}; "
                                      f"see `pyfi ls call --id {call.id}`, or {more_time}")
