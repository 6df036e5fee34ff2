"""Generic operations on the registered object kinds: add, update, delete, list, get.

Each one checks its right first (``require``), validates through the kind's
``prepare`` hook, and works inside the caller's transaction, so a failure
leaves the database unchanged. Update and delete of another user's object
also need UPDATE or DELETE (``require_owner``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pyfi.core.access import Actor, require, require_owner
from pyfi.core.kinds import Kind
from pyfi.core.lookup import find
from pyfi.core.names import check_name
from pyfi.enums import Right
from pyfi.errors import AlreadyExists, InvalidInput


@dataclass(frozen=True)
class Page:
    """One page of a listing and where it sits in the whole."""

    rows: list[Any]
    number: int
    size: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))  # ceiling division


def add(session: Session, actor: Actor, kind: Kind, fields: dict[str, Any]) -> Any:
    require(session, actor, kind.add)
    fields = {k: v for k, v in fields.items() if v is not None}
    name = check_name(fields.get("name"), kind.name)
    if session.scalar(select(kind.model.id).where(kind.model.name == name)) is not None:
        raise AlreadyExists(f"{kind.name} {name!r} already exists",
                            f"choose another name or `pyfi update {kind.name} -n {name} ...`")
    kind.check(actor, fields)
    fields = kind.prepare(session, fields)
    kind.authorize(session, actor, fields)
    obj = kind.model(**fields, owner=actor.name)
    session.add(obj)
    _flush(session, kind, name)
    return obj


def update(session: Session, actor: Actor, kind: Kind, name: str | None, ident: str | None, changes: dict[str, Any]) -> Any:
    require(session, actor, kind.update)
    obj = find(session, kind.model, kind.name, name, ident)
    require_owner(session, actor, obj, kind.name, Right.UPDATE)
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        raise InvalidInput(f"nothing to update on {kind.name} {obj.name!r}", "pass at least one option to change")
    if "name" in changes:
        check_name(changes["name"], kind.name)
    kind.check(actor, changes)
    changes = kind.prepare(session, changes, obj)
    kind.authorize(session, actor, changes, obj)
    for key, value in changes.items():
        setattr(obj, key, value)
    _flush(session, kind, obj.name)
    return obj


def delete(session: Session, actor: Actor, kind: Kind, name: str | None, ident: str | None) -> Any:
    require(session, actor, kind.delete)
    obj = find(session, kind.model, kind.name, name, ident)
    require_owner(session, actor, obj, kind.name, Right.DELETE)
    kind.guard_delete(session, obj)
    session.delete(obj)
    session.flush()
    return obj


def get(session: Session, actor: Actor, kind: Kind, name: str | None, ident: str | None) -> Any:
    require(session, actor, kind.read)
    return find(session, kind.model, kind.name, name, ident)


def listing(session: Session, actor: Actor, kind: Kind, page: int = 1, rows: int = 10, ascend: bool = False) -> Page:
    require(session, actor, kind.ls)
    return paged(session, select(kind.model), kind.model.lastupdated, page, rows, ascend)


def paged(session: Session, query: Any, order_col: Any, page: int, rows: int, ascend: bool) -> Page:
    """Run ``query`` one page at a time; the page number must exist."""
    if rows < 1:
        raise InvalidInput(f"--rows must be at least 1, got {rows}", "pass -r/--rows 10, for example")
    if page < 1:
        raise InvalidInput(f"--page must be at least 1, got {page}", "pages are numbered from 1")
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    result = Page([], page, rows, total)
    if page > result.pages:
        raise InvalidInput(f"page {page} does not exist: there are {result.pages} pages of {rows} rows",
                           f"pass -p 1 to {result.pages}")
    tiebreak = order_col.class_.id  # rows written in one batch share a timestamp: page them stably
    order = (order_col.asc(), tiebreak.asc()) if ascend else (order_col.desc(), tiebreak.desc())
    query = query.order_by(*order).offset((page - 1) * rows).limit(rows)
    return Page(list(session.scalars(query)), page, rows, total)


def _flush(session: Session, kind: Kind, name: str) -> None:
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise AlreadyExists(f"{kind.name} {name!r} conflicts with an existing object", "choose another name") from exc
