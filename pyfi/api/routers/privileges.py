"""``/api/privileges``: grant a right to a user or a role, or revoke it, as ``pyfi add/delete privilege``."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

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


@router.delete("", status_code=204, response_class=Response, operation_id="delete_privilege",
               summary="Revoke a right (takes effect at once)")
def revoke(session: DB, me: Me, right: Annotated[RightName, Query()],
           user: Annotated[Name | None, Query()] = None, role: Annotated[Name | None, Query()] = None) -> None:
    users.delete_privilege(session, me.actor, right, user=user, role=role)
