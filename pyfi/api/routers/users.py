"""``/api/users``: your own profile (``/api/users/me``), and users with the rights ``pyfi add/update/delete user`` need.

``DELETE /api/users/{name}/tokens`` revokes every token of a user (your own
need no right; anyone else's UPDATE_USER), as ``pyfi update user --revoke-tokens``.
"""
from __future__ import annotations

from fastapi import APIRouter, Response

from pyfi.api.crud import fresh, kind_router
from pyfi.api.deps import DB, Me
from pyfi.api.models import NamePath
from pyfi.api.models_users import MeOut, Revoked, UserIn, UserOut, UserUpdate
from pyfi.core import objects, tokens, users
from pyfi.core.kinds import KINDS
from pyfi.core.access import rights_of
from pyfi.core.lookup import by_name
from pyfi.db.models import User

router = APIRouter(tags=["users"])


@router.get("/users/me", response_model=MeOut, operation_id="get_me", summary="Your own profile and every right you hold")
def me(session: DB, caller: Me) -> MeOut:
    profile = UserOut.model_validate(by_name(session, User, caller.name, "user"))
    return MeOut(**profile.model_dump(), rights=sorted(rights_of(session, caller.name)))


@router.post("/users", response_model=UserOut, status_code=201, operation_id="add_user", summary="Add a user")
def add(body: UserIn, session: DB, caller: Me) -> UserOut:
    user = users.add_user(session, caller.actor, body.name, body.email, body.password, adopt=body.adopt)
    return fresh(session, user, UserOut)


@router.patch("/users/{name}", response_model=UserOut, operation_id="update_user", summary="Change a user's email or password")
def update(name: NamePath, body: UserUpdate, session: DB, caller: Me) -> UserOut:
    if body.email is None and body.password is None:  # nothing to change: the user as they are
        return UserOut.model_validate(objects.get(session, caller.actor, KINDS["user"], name, None))
    user = users.update_user(session, caller.actor, name, None, email=body.email, password=body.password)
    return fresh(session, user, UserOut)


@router.delete("/users/{name}", status_code=204, response_class=Response, operation_id="delete_user", summary="Delete a user")
def delete(name: NamePath, session: DB, caller: Me) -> None:
    users.delete_user(session, caller.actor, name, None)


@router.delete("/users/{name}/tokens", response_model=Revoked, operation_id="revoke_tokens",
               summary="Revoke every token of a user")
def revoke_tokens(name: NamePath, session: DB, caller: Me) -> Revoked:
    return Revoked(revoked=tokens.revoke_all(session, caller.actor, name))


router.include_router(kind_router("user", UserOut, delete=False))
