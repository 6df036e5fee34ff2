"""``/api/roles``: roles (list, get, add, delete) and who holds them, as ``pyfi add/delete role [-u USER]``."""
from __future__ import annotations

from fastapi import Response

from pyfi.api.crud import fresh, kind_router
from pyfi.api.deps import DB, Me
from pyfi.api.models import NamePath
from pyfi.api.models_users import Member, RoleIn, RoleOut
from pyfi.core import users
from pyfi.core.lookup import by_name
from pyfi.db.models import Role

router = kind_router("role", RoleOut, delete=False)


@router.post("", response_model=RoleOut, status_code=201, operation_id="add_role", summary="Add a role")
def add(body: RoleIn, session: DB, me: Me) -> RoleOut:
    return fresh(session, users.add_role(session, me.actor, body.name), RoleOut)


@router.delete("/{name}", status_code=204, response_class=Response, operation_id="delete_role", summary="Delete a role")
def delete(name: NamePath, session: DB, me: Me) -> None:
    users.delete_role(session, me.actor, name, None)


@router.post("/{name}/users", response_model=RoleOut, operation_id="grant_role", summary="Give a role to a user")
def grant(name: NamePath, body: Member, session: DB, me: Me) -> RoleOut:
    users.grant_role(session, me.actor, name, body.user)
    return fresh(session, by_name(session, Role, name, "role"), RoleOut)


@router.delete("/{name}/users/{user}", response_model=RoleOut, operation_id="revoke_role",
               summary="Take a role away from a user")
def take(name: NamePath, user: NamePath, session: DB, me: Me) -> RoleOut:
    users.revoke_role(session, me.actor, name, user)
    return fresh(session, by_name(session, Role, name, "role"), RoleOut)
