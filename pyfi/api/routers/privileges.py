"""``/api/privileges``: grant a right to a user or a role, or revoke it, as ``pyfi add/delete privilege``."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from pyfi.api.deps import DB, Me
from pyfi.api.models import Name
from pyfi.api.models_users import PrivilegeIn, PrivilegeOut, RightName
from pyfi.core import users

router = APIRouter(prefix="/privileges", tags=["privileges"])


@router.post("", response_model=PrivilegeOut, status_code=201, operation_id="add_privilege",
             summary="Grant a right (201; 200 when it is held already)")
def grant(body: PrivilegeIn, response: Response, session: DB, me: Me) -> PrivilegeOut:
    privilege, new = users.add_privilege(session, me.actor, body.right, user=body.user, role=body.role)
    if not new:
        response.status_code = 200
    return PrivilegeOut.of(privilege)


@router.delete("/users/{user}/{right}", status_code=204, response_class=Response, operation_id="delete_user_privilege",
               summary="Revoke a right from a user (takes effect at once)")
def revoke_from_user(session: DB, me: Me, user: Annotated[Name, Path()], right: Annotated[RightName, Path()]) -> None:
    users.delete_privilege(session, me.actor, right, user=user)


@router.delete("/roles/{role}/{right}", status_code=204, response_class=Response, operation_id="delete_role_privilege",
               summary="Revoke a right from a role (takes effect at once)")
def revoke_from_role(session: DB, me: Me, role: Annotated[Name, Path()], right: Annotated[RightName, Path()]) -> None:
    users.delete_privilege(session, me.actor, right, role=role)
