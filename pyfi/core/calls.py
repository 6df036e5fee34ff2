"""Reading calls and their lifecycle events (the runtime writes them)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from pyfi.core.access import Actor, require
from pyfi.core.lookup import by_id
from pyfi.core.objects import Page, paged
from pyfi.db.models import Call
from pyfi.enums import Right
from pyfi.errors import InvalidInput, NotFound


def list_calls(session: Session, actor: Actor, page: int = 1, rows: int = 10, ascend: bool = False) -> Page:
    require(session, actor, Right.READ)
    query = select(Call).options(selectinload(Call.socket))
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


def _flow_members(session: Session, call: Call) -> list[Call]:
    """Every call of ``call``'s flow (one indexed query on ``tracking``)."""
    if call.tracking:
        return list(session.scalars(select(Call).where(Call.tracking == call.tracking)))
    return _descendants_by_parent(session, call)


def _descendants_by_parent(session: Session, root: Call) -> list[Call]:
    found, frontier = [root], [root.id]
    while frontier:
        children = list(session.scalars(select(Call).where(Call.parent.in_(frontier))))
        found.extend(children)
        frontier = [c.id for c in children]
    return found


def _children_map(members: list[Call]) -> dict[str | None, list[Call]]:
    children: dict[str | None, list[Call]] = {}
    for member in sorted(members, key=lambda c: (c.started or c.created, c.id)):
        children.setdefault(member.parent, []).append(member)
    return children


def _nest(call: Call, children: dict[str | None, list[Call]], seen: set[str]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for child in children.get(call.id, []):
        if child.id in seen:  # defensive: a corrupt parent cycle must not recurse forever
            continue
        seen.add(child.id)
        label = child.name if child.name not in nested else f"{child.name} [{child.id[:8]}]"
        nested[label] = _nest(child, children, seen)
    return nested


def forward_tree(session: Session, actor: Actor, call: Call) -> dict[str, Any]:
    """``{call name: {child name: {...}}}``: what ``call``'s result fed."""
    require(session, actor, Right.READ)
    children = _children_map(_flow_members(session, call))
    return {call.name: _nest(call, children, {call.id})}


def flow_root(members: list[Call], call: Call) -> Call:
    by_id = {m.id: m for m in members}
    current = call
    while current.parent in by_id and current.parent != current.id:
        current = by_id[current.parent]
    return current


def flow_graph(session: Session, actor: Actor, call: Call) -> dict[str, Any]:
    """The whole flow of ``call``, drawn from its root."""
    require(session, actor, Right.READ)
    members = _flow_members(session, call)
    root = flow_root(members, call)
    return {root.name: _nest(root, _children_map(members), {root.id})}


def flow_calls(session: Session, actor: Actor, call: Call) -> list[Call]:
    """Every call in ``call``'s flow, in the order they started."""
    require(session, actor, Right.READ)
    return sorted(_flow_members(session, call), key=lambda c: (c.started or c.created, c.id))
