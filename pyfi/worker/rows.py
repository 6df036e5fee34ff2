"""How the recorder's records become rows: one merged row per call, one per event, written in bulk.

Records of a call arrive out of order and from several processes, so each
write is a commutative, idempotent merge: the state only moves forward by
:data:`RANK` (a retried call stays ``retry`` until an attempt ends);
``started``/``created`` keep the earliest value, other columns the first
written; event ids derive from (call, event, attempt), so duplicates are
ignored. A refusal (the gate's: :mod:`pyfi.worker.gate`) holds what a sender
chose, so it never outweighs a call that ran: a refusal of a call's id adds
its event and changes none of the call's columns, and the first record of a
call that ran replaces the columns a refusal of its id wrote before it.
A call its sender recorded as pending moves on with the first worker record
(a refusal included); a cancelled call stays cancelled. A
batch the database rejects for its data is written call by call, then
without socket/plug ids; only an outage (:data:`OUTAGE`) is raised, for the
recorder to keep the batch and retry.
"""
from __future__ import annotations

import datetime as dt
import functools
import hashlib
import logging
import uuid
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Engine, and_, case, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.sql.dml import Insert

from pyfi.db.base import utcnow
from pyfi.db.models import Call, Event
from pyfi.enums import CallState, EventName
from pyfi.worker.bulk import Bulk, compile_bulk

log = logging.getLogger("pyfi.worker.recorder")

CALLS = Call.__table__
EVENTS = Event.__table__
#: Fixed forever: event ids derive from it, so changing it would duplicate events.
EVENT_NAMESPACE = uuid.UUID("5b0f1c9e-7d1a-4c36-9a5e-0c6f9c1e2a71")
_NAMESPACE_BYTES = EVENT_NAMESPACE.bytes
#: "refused" first: a refusal of a message that reused the id of a call that ran never changes that call's state;
#: "cancelled" last: a cancelled call stays cancelled, whatever its workers record after
_ORDER = ("refused", "pending", "received", "running", "retry", "revoked", "failed", "finished", "cancelled")
RANK: dict[CallState, int] = {CallState(state): rank for rank, state in enumerate(_ORDER)}
FIRST_WINS = ("owner", "socket_id", "plug_id", "parent", "taskparent", "tracking", "resultkey", "error", "finished",
              "sender")
FOREIGN_KEYS = ("socket_id", "plug_id")
#: what a call that ran takes over from a refusal of its id recorded first
TAKEN_OVER = (*(key for key in FIRST_WINS if key != "owner"), "name", "started")
REFUSED, PENDING = CallState.REFUSED, CallState.PENDING
CALL_COLUMNS = tuple(c.name for c in CALLS.columns)
#: the database is unreachable or asks to try again (deadlock, locked): keep the records and retry
OUTAGE = (OperationalError, InterfaceError, PoolTimeout, ConnectionError, TimeoutError)


@dataclass(slots=True)
class Record:
    """One step of one call, as enqueued; ``fields`` are the call columns it sets."""

    call_id: str
    state: CallState
    event: EventName
    when: dt.datetime
    attempt: int
    note: str
    fields: dict[str, Any]
    worker: str | None = None  # the worker process that recorded it (its events are its own: a run twice shows)

def write(engine: Engine, records: list[Record], owner: str | None) -> None:
    """One transaction: upsert the coalesced call rows, then insert the new events."""
    calls, events = _rows(records, owner)
    with engine.begin() as conn:
        upsert_calls, insert_events = _bulk_statements(conn.dialect)
        upsert_calls.execute(conn, calls)
        insert_events.execute(conn, events)


def write_isolated(engine: Engine, records: list[Record], owner: str | None) -> set[str]:
    """Slow path after a permanent error: one transaction per call, so one bad call costs only itself.

    Returns the socket and plug ids of the calls that could only be written
    without them: they are gone, and later records can leave them out at once.
    """
    missing: set[str] = set()
    by_call: dict[str, list[Record]] = {}
    for record in records:
        by_call.setdefault(record.call_id, []).append(record)
    for call_id, group in by_call.items():
        try:
            write(engine, group, owner)
            continue
        except OUTAGE:
            raise  # the whole batch is retried (what was written merges again)
        except Exception as exc:  # noqa: BLE001 - this call's data: try it without its links
            log.warning("recorder: call %s rejected (%s); retrying without socket/plug ids", call_id, first_line(exc))
        try:
            write(engine, [_without_foreign_keys(r) for r in group], owner)
            missing.update(r.fields[k] for r in group for k in FOREIGN_KEYS if r.fields.get(k))
        except OUTAGE:
            raise
        except Exception as exc:  # noqa: BLE001 - nothing more to try: say so, and keep the rest of the batch
            log.error("recorder: dropping %d records of call %s: %s", len(group), call_id, first_line(exc))
    return missing


def without_links_to(missing: set[str], records: list[Record]) -> list[Record]:
    """The records with socket/plug ids known to be gone left out (so the batch is written in one go)."""
    return [_without_foreign_keys(r) if any(r.fields.get(k) in missing for k in FOREIGN_KEYS) else r for r in records]


def _without_foreign_keys(record: Record) -> Record:
    return replace(record, fields={k: v for k, v in record.fields.items() if k not in FOREIGN_KEYS})


def _rows(records: list[Record], owner: str | None) -> tuple[list[dict], list[dict]]:
    """Coalesce the records into one row per call and one per distinct event, sorted by id.

    Sorting gives concurrent writers (parent and children) one lock order, so
    PostgreSQL never has to break a deadlock between them.
    """
    now = utcnow()
    calls: dict[str, dict] = {}
    events: dict[str, dict] = {}
    for record in records:
        row = calls.get(record.call_id)
        if row is None:
            row = calls[record.call_id] = dict.fromkeys(CALL_COLUMNS)
            row.update(record.fields, id=record.call_id, owner=owner, state=record.state, created=record.when,
                       lastupdated=now)
        else:
            _merge(row, record)
        event_id = event_id_for(record.call_id, record.event, record.attempt, record.worker)
        events.setdefault(event_id, {
            "id": event_id, "name": record.event, "call_id": record.call_id, "owner": owner,
            "note": record.note, "worker": record.worker, "created": record.when, "lastupdated": record.when,
        })
    return sorted(calls.values(), key=lambda r: r["id"]), sorted(events.values(), key=lambda r: r["id"])

def event_id_for(call_id: str, event: str, attempt: int, worker: str | None = None) -> str:
    """``str(uuid.uuid5(EVENT_NAMESPACE, "call/event/attempt[/worker]"))``, without building UUID objects (3 per call).

    ``event`` is the event's name; an :class:`EventName` is a str, and join takes its value as is
    (formatting it would call ``__str__``, ten times slower).
    """
    parts = (call_id, event, str(attempt)) if worker is None else (call_id, event, str(attempt), worker)
    h = hashlib.sha1(_NAMESPACE_BYTES + "/".join(parts).encode()).hexdigest()
    # version 5 in the 13th digit; the RFC 4122 variant in the top two bits of the 17th
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def _merge(row: dict, record: Record) -> None:
    """Fold ``record`` into its call's ``row``: the in-batch twin of the upsert's conflict clause."""
    if record.state == REFUSED and row["state"] != REFUSED:
        return  # a refusal of a call that ran: its event only
    if row["state"] == REFUSED and record.state != REFUSED:  # the call itself, after a refusal of its id
        row.update(dict.fromkeys(TAKEN_OVER), name="", state=record.state, created=record.when)
    if RANK[record.state] > RANK[row["state"]]:
        row["state"] = record.state
    if row["created"] is None or record.when < row["created"]:
        row["created"] = record.when
    for key, value in record.fields.items():  # only the columns this record sets (absent ones are None)
        if value is None:
            continue
        if key == "started":
            if row[key] is None or value < row[key]:
                row[key] = value
        elif key == "name":
            row[key] = row[key] or value
        elif key in FIRST_WINS and row[key] is None:
            row[key] = value


@functools.cache
def _statements(dialect: str) -> tuple[Insert, Insert]:
    """The call upsert (merging as :func:`_merge` does) and the idempotent event insert."""
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect]
    stmt = insert(CALLS)
    old, new = CALLS.c, stmt.excluded
    refused = REFUSED.value
    takeover = and_(old.state == refused, new.state != refused)  # the call, after a refusal of its id
    ignored = and_(new.state == refused, old.state != refused, old.state != PENDING.value)  # of a call that ran
    merged = {
        "state": case((and_(new.state == refused, old.state == PENDING.value), new.state),  # its sender's, refused
                      (_rank(new.state) > _rank(old.state), new.state), else_=old.state),
        "started": case((takeover, new.started), else_=_earliest(old.started, new.started)),
        "created": case((takeover, new.created), (ignored, old.created), else_=_earliest(old.created, new.created)),
        "name": case((takeover, new.name), (ignored, old.name), (old.name == "", new.name),
                     (and_(old.state == PENDING.value, new.state != refused), new.name),  # what ran, not what was sent
                     else_=old.name),
        "lastupdated": case((ignored, old.lastupdated), else_=new.lastupdated),
        **{key: case((takeover, new[key]), (ignored, old[key]), else_=func.coalesce(old[key], new[key]))
           for key in FIRST_WINS},
    }
    # who sent it, as the worker's gate checked it, over what a pending row's writer said
    merged["sender"] = case((old.state == PENDING.value, func.coalesce(new.sender, old.sender)), else_=merged["sender"])
    upsert = stmt.on_conflict_do_update(index_elements=[old.id], set_=merged)
    events = insert(EVENTS).on_conflict_do_nothing(index_elements=[EVENTS.c.id])
    return upsert, events


@functools.cache
def _bulk_statements(dialect: Any) -> tuple[Bulk, Bulk]:
    """The call upsert and the event insert of :func:`_statements`, for the DBAPI of ``dialect``."""
    upsert, events = _statements(dialect.name)
    return compile_bulk(upsert, CALLS, dialect), compile_bulk(events, EVENTS, dialect)


def _rank(column: Any) -> Any:
    return case({state.value: rank for state, rank in RANK.items()}, value=column, else_=0)


def _earliest(old: Any, new: Any) -> Any:
    return case((old.is_(None), new), (new < old, new), else_=old)


def first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
