"""What every route depends on: a database transaction, and the caller the token names.

- :func:`db`: one transaction per request on the app's database (committed
  when the route returns, before the answer is sent; rolled back on error).
- :func:`caller`: the user a bearer token names, as a :class:`Caller`, from
  ``Authorization: Bearer TOKEN`` or the web dashboard's ``pyfi_token``
  cookie. An unsafe request (POST, PUT, PATCH, DELETE) authenticated by the
  cookie alone must also carry ``X-Pyfi-Web: 1``, which another site's page
  cannot send (the CSRF guard). 401 with ``WWW-Authenticate: Bearer`` when
  the token is missing, unknown, expired or revoked.

Routes use the aliases :data:`DB` and :data:`Me`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Iterator

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session

from pyfi.core.access import Actor
from pyfi.core.context import CoreContext
from pyfi.errors import NotAuthenticated

#: the web dashboard's cookie holding the token (HttpOnly, SameSite=Strict)
COOKIE = "pyfi_token"
#: the header a page of the dashboard sends with unsafe requests
WEB_HEADER = "X-Pyfi-Web"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})

bearer = OAuth2PasswordBearer(tokenUrl="/api/token", auto_error=False)


@dataclass(frozen=True)
class Caller:
    """The user a request acts as."""

    name: str
    actor: Actor


def core_of(request: Request) -> CoreContext:
    return request.app.state.core


def db(request: Request) -> Iterator[Session]:
    """One transaction per request: committed at the end, rolled back on error."""
    from pyfi.db.engine import check_initialized, session_scope

    url = core_of(request).db_url
    if not getattr(request.app.state, "checked", False):
        check_initialized(url)  # no schema: one line saying to run `pyfi db init`
        request.app.state.checked = True
    with session_scope(url) as session:
        yield session


DB = Annotated[Session, Depends(db, scope="function")]


def token_of(request: Request, header_token: str | None) -> str:
    """The request's token: the Authorization header's, else the cookie's (with the CSRF guard)."""
    if header_token:
        return header_token
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        raise NotAuthenticated("no token: send Authorization: Bearer TOKEN", "get one with POST /api/token")
    if request.method in UNSAFE and request.headers.get(WEB_HEADER) != "1":
        raise NotAuthenticated(f"a change authenticated by the {COOKIE} cookie needs the header {WEB_HEADER}: 1",
                               "send the header, or Authorization: Bearer TOKEN")
    return cookie


def caller(request: Request, session: DB, header_token: Annotated[str | None, Depends(bearer)]) -> Caller:
    """The user the request's token names (401 when it names no one)."""
    from pyfi.core.tokens import verify

    name = verify(session, token_of(request, header_token))
    return Caller(name, Actor(name, git_allow=core_of(request).settings.git_allow))


Me = Annotated[Caller, Depends(caller)]
