"""Generic operations on the registered object kinds: add, update, delete, list, get.

Each one checks its right first (``require``), validates through the kind's
``prepare`` hook, and works inside the caller's transaction, so a failure
leaves the database unchanged. Update and delete of another user's object
also need UPDATE or DELETE (``require_owner``).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pyfi.core.access import Actor, require, require_owner
from pyfi.core.kinds import Kind
from pyfi.core.lookup import find
from pyfi.core.names import check_name
from pyfi.core.paging import Page, paged
from pyfi.enums import Right
from pyfi.errors import AlreadyExists, InvalidInput


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


def _flush(session: Session, kind: Kind, name: str) -> None:
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise AlreadyExists(f"{kind.name} {name!r} conflicts with an existing object", "choose another name") from exc
