"""The one place where rights are checked, for CLI, API and client alike.

A user's rights are their own privileges plus those of their roles; ``ALL``
grants everything. Every core operation calls ``require`` before it touches
anything, so a denied operation changes nothing. Rights are read from the
database on every check (no cache), so a revoke takes effect at once.

Ownership: changing or deleting an object needs the kind's right (e.g.
UPDATE_PROCESSOR); when the object belongs to someone else it also needs the
generic right for others' objects, UPDATE or DELETE (``ALL`` covers both).
On PostgreSQL the row-level security policies of migration 0004 enforce the
same boundary in the database itself.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pyfi.core.login import acting_user
from pyfi.db.models import Privilege, Role, SigningKey, User, user_roles
from pyfi.enums import Right
from pyfi.errors import PermissionDenied


@dataclass(frozen=True)
class Actor:
    """Who is acting, and the site policy they act under.

    ``name`` is the pyfi user (owner of what they create); ``git_allow`` the
    administrator's allow-list of git repository patterns (empty: no limit),
    passed in by the front end from its settings.
    """

    name: str
    git_allow: tuple[str, ...] = ()


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


def acting_name(session: Session, actor: Actor) -> str:
    """The user rights are checked for: over a pyfi user's own PostgreSQL login, that user, whatever ``actor`` says."""
    return acting_user(session, actor.name)


def has_right(session: Session, actor: Actor, right: Right) -> bool:
    held = rights_of(session, acting_name(session, actor))
    return Right.ALL in held or right in held


def require(session: Session, actor: Actor, right: Right) -> None:
    """Raise PermissionDenied naming the missing right unless ``actor`` holds it."""
    if has_right(session, actor, right):
        return
    name = acting_name(session, actor)
    if session.scalar(select(User.id).where(User.name == name)) is None:
        raise PermissionDenied(
            f"{name!r} is not a pyfi user",
            "ask an administrator to run `pyfi add user`, or set the login user (PYFI_USER or [login] user)",
        )
    raise PermissionDenied(
        f"user {name!r} lacks the right {right.value}",
        f"ask an administrator: pyfi add privilege -u {name} -n {right.value}",
    )


def require_owner(session: Session, actor: Actor, obj: Any, what: str, others: Right, doing: str = "changing") -> None:
    """Unless ``actor`` owns ``obj``, require ``others`` (UPDATE or DELETE: the right for others' objects)."""
    name = acting_name(session, actor)
    if obj.owner == name or has_right(session, actor, others):
        return
    raise PermissionDenied(
        f"{what} {obj.name!r} belongs to {obj.owner!r}; {doing} another user's {what} needs the right {others.value}",
        f"ask {obj.owner!r}, or an administrator: pyfi add privilege -u {name} -n {others.value}",
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
    if not session.scalar(select(SigningKey.id).where(SigningKey.user_id == user.id)):
        from pyfi.core.keys import add_user_key

        add_user_key(session, user)
    return user


def role_names(user: User) -> list[str]:
    return sorted(r.name for r in user.roles)


__all__ = ["Actor", "rights_of", "has_right", "require", "require_owner", "bootstrap_admin", "role_names", "Role"]
