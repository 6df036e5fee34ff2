"""Requesting processor state changes; agents react to ``requested_status``.

Each action needs its right; on another user's processor it also needs
UPDATE (it updates that processor's row), as ``objects.update`` does.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from pyfi.core.access import Actor, require, require_owner
from pyfi.core.kinds import kind
from pyfi.core.lookup import find
from pyfi.db.base import utcnow
from pyfi.db.models import Processor, Queue, Socket
from pyfi.enums import ProcessorStatus, Right

#: proc sub-command -> (right needed, requested status)
ACTIONS: dict[str, tuple[Right, ProcessorStatus]] = {
    "start": (Right.START_PROCESSOR, ProcessorStatus.RUNNING),
    "stop": (Right.STOP_PROCESSOR, ProcessorStatus.STOPPED),
    "pause": (Right.PAUSE_PROCESSOR, ProcessorStatus.PAUSED),
    "resume": (Right.RESUME_PROCESSOR, ProcessorStatus.RUNNING),
    "restart": (Right.START_PROCESSOR, ProcessorStatus.RUNNING),
    "remove": (Right.DELETE_PROCESSOR, ProcessorStatus.REMOVED),
}


def request(session: Session, actor: Actor, action: str, name: str | None, ident: str | None) -> Processor:
    """Record what the processor should do; the agents converge to it."""
    right, status = ACTIONS[action]
    require(session, actor, right)
    processor = find(session, Processor, "processor", name, ident)
    require_owner(session, actor, processor, "processor", Right.UPDATE)
    processor.requested_status = status
    if action == "restart":
        processor.restart_requested = utcnow()
    session.flush()
    return processor


def rooms(session: Session, actor: Actor) -> list[str]:
    """The pub/sub rooms, ``<queue>.<processor>``, that workers of the sockets in the database publish in."""
    require(session, actor, kind("socket").ls)
    pairs = session.execute(select(Queue.name, Processor.name).select_from(Socket).join(Socket.queue)
                            .join(Socket.processor)).all()
    return sorted({f"{queue}.{processor}" for queue, processor in pairs})
