"""Logging in and out with a form; the token lives in an HttpOnly, SameSite=Strict cookie.

The login form posts a user name and a password here; the server checks them
as ``POST /api/token`` does (the same throttle of repeated failures, the same
one answer for a wrong name or a wrong password), sets the ``pyfi_token``
cookie and redirects to the dashboard. The token never appears in a URL or
in the page, and scripts cannot read it. Logging out revokes the token and
clears the cookie.
"""
from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from pyfi.api.deps import COOKIE, DB
from pyfi.core import tokens
from pyfi.db.base import utcnow
from pyfi.errors import NotAuthenticated
from pyfi.web.app import TEMPLATES

router = APIRouter(include_in_schema=False)


def signed_in(request: Request, session: Session) -> str | None:
    """The user the request's cookie names; None without a live token."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        return tokens.verify(session, token)
    except NotAuthenticated:
        return None


def to_login(request: Request) -> RedirectResponse:
    """Off to the login page, forgetting a cookie that names no one any more."""
    response = RedirectResponse("/login", status_code=303)
    if request.cookies.get(COOKIE):
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=secure(request))
    return response


def login_page(request: Request, error: str = "", username: str = "", status: int = 200,
               headers: dict[str, str] | None = None) -> Response:
    return TEMPLATES.TemplateResponse(request, "login.html", {"user": None, "error": error, "username": username},
                                      status_code=status, headers=headers)


@router.get("/login")
def show_login(request: Request, session: DB) -> Response:
    if signed_in(request, session):
        return RedirectResponse("/", status_code=303)
    return login_page(request)


@router.post("/login")
def log_in(request: Request, session: DB, username: Annotated[str, Form(max_length=200)] = "",
           password: Annotated[str, Form(max_length=1000)] = "") -> Response:
    """Check the name and password; on success set the cookie and go to the dashboard."""
    throttle = request.app.state.throttle
    keys = [f"user:{username}", f"client:{request.client.host if request.client else '?'}"]
    wait = throttle.wait(keys)
    if wait:
        return login_page(request, f"Too many failed logins: try again in {wait} s.", username, 429,
                          {"Retry-After": str(wait)})
    try:
        issued = tokens.token_for(session, username, password, request.app.state.token_hours)
    except NotAuthenticated:
        throttle.failed(keys)
        return login_page(request, "Wrong user name or password.", username, 401)
    throttle.succeeded(keys[0])
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(COOKIE, issued.token, max_age=seconds_left(issued.expires), path="/", httponly=True,
                        samesite="strict", secure=secure(request))
    return response


def secure(request: Request) -> bool:
    """Served over HTTPS (uvicorn reads a proxy's X-Forwarded-Proto from this host): the cookie is never sent in clear."""
    return request.url.scheme == "https"


def seconds_left(expires: dt.datetime) -> int:
    return max(1, int((expires - utcnow()).total_seconds()))


@router.post("/logout")
def log_out(request: Request, session: DB) -> Response:
    """Revoke the cookie's token and clear the cookie (a cookie from another site is never sent: SameSite=Strict)."""
    token = request.cookies.get(COOKIE)
    if token:
        tokens.revoke(session, token)
    return to_login(request)
