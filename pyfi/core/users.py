"""Users, roles and privileges: the data behind ``pyfi.core.access``.

On PostgreSQL a user is also a database login role (``pyfi.core.pg_roles``),
created, re-passworded and dropped in the same transaction as the row; the
masked statement is handed to ``echo`` (the CLI prints it, as the original pyfi documentation shows).
"""
from __future__ import annotations

from typing import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from pyfi.core import keys, pg_roles
from pyfi.core.access import Actor, require
from pyfi.core.login import own_login
from pyfi.core.lookup import by_name, find
from pyfi.core.names import check_name
from pyfi.core.passwords import hash_password
from pyfi.db.models import Privilege, Role, User
from pyfi.enums import Right, parse_enum
from pyfi.errors import AlreadyExists, InvalidInput, NotFound

Echo = Callable[[str], None]


def _quiet(_line: str) -> None:
    return None


def add_user(session: Session, actor: Actor, name: str, email: str | None, password: str | None,
             echo: Echo = _quiet, adopt: bool = False) -> User:
    """Add a user; on PostgreSQL also their login role (``echo`` gets the masked statement).

    ``adopt``: take over a database role of that name that exists already (a
    pyfi user of another database on the server); refused otherwise.
    """
    require(session, actor, Right.ADD_USER)
    check_name(name, "user")
    if session.scalar(select(User.id).where(User.name == name)):
        raise AlreadyExists(f"user {name!r} already exists", f"choose another name or `pyfi update user -n {name}`")
    if pg_roles.enabled(session):
        pg_roles.check_role_name(name)
        if not password:
            raise InvalidInput(f"user {name!r} needs a password on PostgreSQL", "pass -p/--password or answer the prompt")
    if pg_roles.enabled(session):  # the role first: the database refuses a user row without one
        echo(pg_roles.create(session, name, password, adopt=adopt))
    user = User(name=name, email=email, owner=actor.name, password_hash=hash_password(password) if password else None)
    session.add(user)
    session.flush()
    keys.add_user_key(session, user)
    return user


def update_user(session: Session, actor: Actor, name: str | None, ident: str | None,
                email: str | None = None, password: str | None = None) -> User:
    require(session, actor, Right.UPDATE_USER)
    user = find(session, User, "user", name, ident)
    if email is None and password is None:
        raise InvalidInput(f"nothing to update on user {user.name!r}", "pass -e/--email or -p/--password")
    if email is not None:
        user.email = email
    if password is not None:
        user.password_hash = hash_password(password)
        if own_login(session) is None:  # set by an administrator: a new signing key too (a user's own login keeps it)
            keys.replace_user_key(session, user)
        if pg_roles.enabled(session):
            pg_roles.set_password(session, user.name, password)
    session.flush()
    return user


def delete_user(session: Session, actor: Actor, name: str | None, ident: str | None,
                echo: Echo = _quiet) -> User:
    """Delete a user and their privileges; on PostgreSQL also drop their login role."""
    require(session, actor, Right.DELETE_USER)
    user = find(session, User, "user", name, ident)
    session.delete(user)
    session.flush()
    done = pg_roles.drop(session, user.name) if pg_roles.enabled(session) else None
    if done:
        echo(done)
    return user


def add_role(session: Session, actor: Actor, name: str) -> Role:
    require(session, actor, Right.ADD_ROLE)
    check_name(name, "role")
    if session.scalar(select(Role.id).where(Role.name == name)):
        raise AlreadyExists(f"role {name!r} already exists", "choose another name")
    role = Role(name=name, owner=actor.name)
    session.add(role)
    session.flush()
    return role


def delete_role(session: Session, actor: Actor, name: str | None, ident: str | None) -> Role:
    require(session, actor, Right.DELETE_ROLE)
    role = find(session, Role, "role", name, ident)
    session.delete(role)
    session.flush()
    return role


def grant_role(session: Session, actor: Actor, role_name: str, user_name: str) -> None:
    require(session, actor, Right.UPDATE_USER)
    role = by_name(session, Role, role_name, "role")
    user = by_name(session, User, user_name, "user")
    if role in user.roles:
        raise AlreadyExists(f"user {user_name!r} already has role {role_name!r}", "nothing to do")
    user.roles.append(role)
    session.flush()


def revoke_role(session: Session, actor: Actor, role_name: str, user_name: str) -> None:
    require(session, actor, Right.UPDATE_USER)
    role = by_name(session, Role, role_name, "role")
    user = by_name(session, User, user_name, "user")
    if role not in user.roles:
        raise NotFound(f"user {user_name!r} does not have role {role_name!r}", f"see `pyfi ls user -n {user_name}`")
    user.roles.remove(role)
    session.flush()


def _grantee(session: Session, user: str | None, role: str | None) -> dict[str, str]:
    if bool(user) == bool(role):
        raise InvalidInput("a privilege goes to one user or one role", "pass exactly one of -u/--user or -r/--role")
    if user:
        return {"user_id": by_name(session, User, user, "user").id}
    return {"role_id": by_name(session, Role, role, "role").id}


def add_privilege(session: Session, actor: Actor, right: str, user: str | None = None,
                  role: str | None = None) -> tuple[Privilege, bool]:
    """Grant ``right`` to a user or a role: (the privilege, whether it is new); one held already is left as it is."""
    require(session, actor, Right.ADD_PRIVILEGE)
    member = parse_enum(Right, right, "right")
    grantee = _grantee(session, user, role)
    exists = select(Privilege).where(Privilege.right == member, *(getattr(Privilege, k) == v for k, v in grantee.items()))
    held = session.scalar(exists)
    if held is not None:
        return held, False
    privilege = Privilege(right=member, owner=actor.name, **grantee)
    session.add(privilege)
    session.flush()
    return privilege, True


def delete_privilege(session: Session, actor: Actor, right: str, user: str | None = None, role: str | None = None) -> None:
    require(session, actor, Right.DELETE_PRIVILEGE)
    member = parse_enum(Right, right, "right")
    grantee = _grantee(session, user, role)
    query = select(Privilege).where(Privilege.right == member, *(getattr(Privilege, k) == v for k, v in grantee.items()))
    privilege = session.scalar(query)
    if privilege is None:
        raise NotFound(f"{user or role!r} does not hold {member.value}", "see `pyfi ls user -n NAME`")
    session.delete(privilege)
    session.flush()
