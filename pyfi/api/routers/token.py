"""``POST /api/token``: a user's name and password (the OAuth2 password form) for a bearer token."""
from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from pyfi.api.deps import DB
from pyfi.api.errors import Problem
from pyfi.core import tokens
from pyfi.errors import NotAuthenticated

router = APIRouter(tags=["login"])


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: dt.datetime


@router.post("/token", response_model=Token, responses={429: {"model": Problem, "description": "Too many failures"}})
def login(request: Request, form: Annotated[OAuth2PasswordRequestForm, Depends()], session: DB) -> Token:
    """Log in: the same 401 for a wrong name or password; 429 after repeated failures for a name or client."""
    throttle = request.app.state.throttle
    keys = [f"user:{form.username}", f"client:{request.client.host if request.client else '?'}"]
    wait = throttle.wait(keys)
    if wait:
        raise HTTPException(429, f"too many failed logins: try again in {wait} s", headers={"Retry-After": str(wait)})
    try:
        issued = tokens.token_for(session, form.username, form.password, request.app.state.token_hours)
    except NotAuthenticated:
        throttle.failed(keys)
        raise
    throttle.succeeded(keys[0])
    return Token(access_token=issued.token, expires_at=issued.expires.replace(tzinfo=dt.timezone.utc))
