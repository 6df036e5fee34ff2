"""The dashboard's part of the web application: pages, login, static files and their headers.

Pages are served outside ``/api/``; each one is a shell the browser fills from
the REST API. Every answer outside ``/api/`` carries a Content-Security-Policy
allowing this server's own scripts, styles and connections only (no inline
script at all), and may not be framed by another site.
"""
from __future__ import annotations

from pathlib import Path
from typing import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

import pyfi

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
TEMPLATES = Jinja2Templates(directory=HERE / "templates")

#: the headers of every page and static file (the API's own answers are left as they are)
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; script-src 'self'; style-src 'self'; "
                               "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def static_url(name: str) -> str:
    """A static file's address, with pyfi's version so that an upgrade is never served from a stale cache."""
    return f"/static/{name}?v={pyfi.__version__}"


TEMPLATES.env.globals["static"] = static_url


def install(app: FastAPI) -> None:
    """Add the dashboard to an API application."""
    from pyfi.web import auth, pages, reads

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in (auth, pages, reads):
        app.include_router(module.router)
    app.middleware("http")(page_headers)


async def page_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    response = await call_next(request)
    if not request.url.path.startswith("/api/"):
        for name, value in PAGE_HEADERS.items():
            response.headers.setdefault(name, value)
    return response
