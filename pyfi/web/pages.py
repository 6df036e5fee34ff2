"""The dashboard's pages: the network, the calls, one call. Each needs a logged-in user.

A page is a shell: the browser fills it from the REST API with the user's
cookie, so what it shows is what the API lets that user read.
"""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from pyfi.api.deps import DB
from pyfi.enums import CallState
from pyfi.web.app import STATIC, TEMPLATES
from pyfi.web.auth import signed_in, to_login

router = APIRouter(include_in_schema=False)


def page(request: Request, session: DB, template: str, name: str, **context: object) -> Response:
    user = signed_in(request, session)
    if user is None:
        return to_login(request)
    return TEMPLATES.TemplateResponse(request, template, {"user": user, "page": name, **context})


@router.get("/")
def network(request: Request, session: DB) -> Response:
    return page(request, session, "network.html", "network")


@router.get("/calls")
def calls(request: Request, session: DB) -> Response:
    return page(request, session, "calls.html", "calls", states=CallState.values())


@router.get("/calls/{call_id}")
def call(request: Request, session: DB, call_id: str) -> Response:
    return page(request, session, "call.html", "calls", call_id=call_id)


@router.get("/favicon.ico")
def favicon() -> FileResponse:
    return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")
