"""The API's bodies for users, roles and privileges (``pyfi add/update/delete user|role|privilege``)."""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool

from pyfi.api.models import Name, Names, Object, Strict, UtcTime, text
from pyfi.enums import Right


def _rights(privileges: Any) -> list[str]:
    return sorted(p if isinstance(p, str) else p.right.value for p in privileges)


Rights = Annotated[list[str], BeforeValidator(_rights)]
Password = text(1000, 1)
RightName = Right


class UserIn(Strict):
    name: Name
    email: text(200) | None = None
    password: Password | None = Field(None, description="needed on PostgreSQL, where a user is also a database login")
    adopt: StrictBool = Field(False, description="PostgreSQL: make an existing database role of that name this user")


class UserUpdate(Strict):
    email: text(200) | None = None
    password: Password | None = None


class UserOut(Object):
    email: str | None = None
    roles: Names = []
    privileges: Rights = Field([], description="the rights held directly (a role's are the role's)")


class MeOut(UserOut):
    rights: list[str] = Field([], description="every right you hold, directly or through your roles (ALL: every right)")


class RoleIn(Strict):
    name: Name


class RoleOut(Object):
    users: Names = []
    privileges: Rights = []


class Member(Strict):
    user: Name


class PrivilegeIn(Strict):
    """A right for one user or one role: exactly one of ``user`` and ``role``."""

    model_config = ConfigDict(json_schema_extra={"oneOf": [{"required": ["user"]}, {"required": ["role"]}]})

    right: RightName = Field(description="the right, e.g. ADD_PROCESSOR")
    user: Name = Field(None, description="the user to grant it to (or role)")  # type: ignore[assignment]
    role: Name = Field(None, description="the role to grant it to (or user)")  # type: ignore[assignment]


class PrivilegeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    right: str
    user: str | None = None
    role: str | None = None
    owner: str | None = None
    created: UtcTime

    @classmethod
    def of(cls, privilege: Any) -> "PrivilegeOut":
        return cls(id=privilege.id, right=privilege.right.value, owner=privilege.owner, created=privilege.created,
                   user=privilege.user.name if privilege.user else None,
                   role=privilege.role.name if privilege.role else None)


class Revoked(BaseModel):
    revoked: int = Field(description="how many live tokens were revoked")
