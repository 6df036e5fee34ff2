"""``pyfi task cancel``: a call that has not ended becomes ``cancelled``, for good.

The call's row is the cancellation (who, when, whether to terminate): every
worker of its socket reads it within a second (:mod:`pyfi.worker.cancels`),
drops the call if it is still queued and never runs it, stops it if it runs
and ``terminate`` was asked for, and fires none of its plugs. No record a
worker writes later changes the state back (:mod:`pyfi.worker.rows`).
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from pyfi.core.access import Actor, require
from pyfi.core.calls import find_call
from pyfi.db.base import utcnow
from pyfi.db.models import Call
from pyfi.enums import CallState, Right
from pyfi.errors import InvalidInput, NotFound

#: the states of a call that has not ended: the ones it can be cancelled in
OPEN = (CallState.PENDING, CallState.RECEIVED, CallState.RUNNING, CallState.RETRY)


@dataclass(frozen=True)
class Outcome:
    """What cancelling did to one call."""

    call_id: str
    state: CallState  # its state before
    cancelled: bool  # False: it had ended, or was cancelled already
    by: str | None = None  # who cancelled it, when it was cancelled already

    @property
    def text(self) -> str:
        if self.cancelled:
            return f"cancelled call {self.call_id} (it was {self.state})"
        if self.state == CallState.CANCELLED:
            return f"call {self.call_id} was cancelled already, by {self.by or '?'}"
        return f"call {self.call_id} has ended ({self.state}): nothing to cancel"


def cancel(session: Session, actor: Actor, ident: str | None = None, tracking: str | None = None,
           terminate: bool = False) -> list[Outcome]:
    """Cancel one call (``ident``: its id or a unique prefix) or every open call of a flow (``tracking``)."""
    require(session, actor, Right.CANCEL_TASK)
    if (ident is None) == (tracking is None):
        raise InvalidInput("cancel which calls? give --id or --tracking (one of them)",
                           "e.g. pyfi task cancel --id ID, or pyfi task cancel --tracking FLOW")
    calls = [find_call(session, ident)] if ident is not None else _flow(session, tracking or "")
    return [_cancel_one(session, actor, call, terminate) for call in calls]


def _flow(session: Session, tracking: str) -> list[Call]:
    calls = list(session.scalars(select(Call).where(Call.tracking == tracking).order_by(Call.created)))
    if not calls:
        raise NotFound(f"no call of flow {tracking!r} is recorded", "see `pyfi ls calls` for flows (Tracking)")
    return calls


def _cancel_one(session: Session, actor: Actor, call: Call, terminate: bool) -> Outcome:
    before = CallState(call.state)
    if before not in OPEN:
        return Outcome(call.id, before, False, call.cancelled_by)
    done = session.execute(
        update(Call).where(Call.id == call.id, Call.state.in_(OPEN))
        .values(state=CallState.CANCELLED, cancelled_by=actor.name, cancelled=utcnow(), terminate=terminate,
                lastupdated=utcnow())
        .execution_options(synchronize_session=False))
    if not done.rowcount:  # it ended meanwhile
        session.refresh(call)
        return Outcome(call.id, CallState(call.state), False, call.cancelled_by)
    return Outcome(call.id, before, True)
