"""The one place where rights are checked, for CLI, API and client alike.

A user's rights are their own privileges plus those of their roles; ``ALL``
grants everything. Every core operation calls ``require`` before it touches
anything, so a denied operation changes nothing.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from pyfi.db.models import Privilege, Role, User, user_roles
from pyfi.enums import Right
from pyfi.errors import PermissionDenied


@dataclass(frozen=True)
class Actor:
    """Who is acting: the pyfi user name (owner of what they create)."""

    name: str


def rights_of(session: Session, user_name: str) -> set[Right]:
    """Every right the named user holds, directly or through a role."""
    user_id = session.scalar(select(User.id).where(User.name == user_name))
    if user_id is None:
        return set()
    role_ids = select(user_roles.c.role_id).where(user_roles.c.user_id == user_id)
    rows = session.scalars(
        select(Privilege.right).where((Privilege.user_id == user_id) | (Privilege.role_id.in_(role_ids)))
    )
    return set(rows)


def has_right(session: Session, actor: Actor, right: Right) -> bool:
    held = rights_of(session, actor.name)
    return Right.ALL in held or right in held


def require(session: Session, actor: Actor, right: Right) -> None:
    """Raise PermissionDenied naming the missing right unless ``actor`` holds it."""
    if has_right(session, actor, right):
        return
    if session.scalar(select(User.id).where(User.name == actor.name)) is None:
        raise PermissionDenied(
            f"{actor.name!r} is not a pyfi user",
            "ask an administrator to run `pyfi add user`, or set the login user (PYFI_USER or [login] user)",
        )
    raise PermissionDenied(
        f"user {actor.name!r} lacks the right {right.value}",
        f"ask an administrator: pyfi add privilege -u {actor.name} -n {right.value}",
    )


def bootstrap_admin(session: Session, name: str) -> User:
    """Make sure ``name`` exists as a user holding ALL (the database owner)."""
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        user = User(name=name, owner=name)
        session.add(user)
        session.flush()
    if not session.scalar(select(Privilege.id).where(Privilege.user_id == user.id, Privilege.right == Right.ALL)):
        session.add(Privilege(right=Right.ALL, user_id=user.id, owner=name))
    return user


def role_names(user: User) -> list[str]:
    return sorted(r.name for r in user.roles)


__all__ = ["Actor", "rights_of", "has_right", "require", "bootstrap_admin", "role_names", "Role"]
