"""Shell flows: chaining ``pyfi task run`` calls through a pipe, with provenance.

A plain pipe passes results as text: ``echo hi | pyfi task run -s a | pyfi
task run -s b`` works, but ``b`` cannot know which call fed it. With
``--chain``, ``task run`` prints an *envelope* instead of the bare result::

    {"pyfi": "chain", "call": "<call id>", "tracking": "<flow id>", "result": <value>}

and a downstream ``task run`` that reads an envelope (from stdin or ``-d``)
unwraps it: the call gets ``result`` as its argument, the envelope's call
as its parent and its tracking as its flow. Anything else is plain data, so
plain pipes and shell filters between stages keep working.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pyfi.db.models import Call

MARK = "chain"
KEYS = {"pyfi", "call", "tracking", "result"}


@dataclass(frozen=True)
class Link:
    """Where a chained call comes from: its data, parent call and flow."""

    data: Any
    parent: str | None = None
    tracking: str | None = None


def envelope(call_id: str, tracking: str, result: Any) -> str:
    return json.dumps({"pyfi": MARK, "call": call_id, "tracking": tracking, "result": result})


def unwrap(data: Any) -> Link:
    """A Link from an envelope; plain data (anything else) as it is."""
    if isinstance(data, dict) and set(data) == KEYS and data["pyfi"] == MARK \
            and _is_uuid(data["call"]) and _is_uuid(data["tracking"]):
        return Link(data["result"], data["call"], data["tracking"])
    return Link(data)


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return isinstance(value, str)


def tracking_of(session: Session, parent: str) -> str:
    """The flow a new child of ``parent`` belongs to.

    The parent's recorded tracking when it is known; else the parent's own id,
    which is right whenever the parent started its flow (a plain ``task run``).
    """
    tracking = session.scalar(select(Call.tracking).where(Call.id == parent))
    return tracking or parent
