"""Finding objects by name or id, with errors that suggest the fix."""
from __future__ import annotations

import difflib
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from pyfi.errors import InvalidInput, NotFound

T = TypeVar("T")


def by_name(session: Session, model: type[T], name: str, what: str) -> T:
    """The object of ``model`` called ``name``; NotFound lists close names."""
    obj = session.scalar(select(model).where(model.name == name))  # type: ignore[attr-defined]
    if obj is None:
        raise NotFound(f"no {what} named {name!r}", _suggest(session, model, name, what))
    return obj


def by_id(session: Session, model: type[T], ident: str, what: str) -> T:
    obj = session.get(model, ident)
    if obj is None:
        raise NotFound(f"no {what} with id {ident!r}", f"list them with `pyfi ls {what}s`")
    return obj


def find(session: Session, model: type[T], what: str, name: str | None = None, ident: str | None = None) -> T:
    """Select by ``--id`` or ``-n/--name``; exactly one must be given."""
    if ident:
        return by_id(session, model, ident, what)
    if name:
        return by_name(session, model, name, what)
    raise InvalidInput(f"which {what}? none was named", "give -n/--name NAME or --id ID")


def _suggest(session: Session, model: type, name: str, what: str) -> str:
    names = session.scalars(select(model.name)).all()  # type: ignore[attr-defined]
    close = difflib.get_close_matches(name, names, n=3)
    if close:
        return "did you mean " + ", ".join(repr(c) for c in close) + "?"
    return f"list them with `pyfi ls {what}s`"
