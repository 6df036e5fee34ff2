"""pyfi's web dashboard: pages over the REST API, served by one process (``pyfi web start``).

The pages are HTML rendered on the server (Jinja2) plus plain JavaScript and
CSS committed under ``static/``: nothing is built at install or run time.
Everything a page shows or changes goes through the REST API under
``/api/``, with the token the login form puts in an HttpOnly cookie, so a
page can do exactly what its user may do through the API, no more.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI


def create_web_app(flags: dict[str, Any] | None = None) -> FastAPI:
    """The REST API application (``pyfi.api.app.create_app``) with the dashboard's pages added."""
    from pyfi.api.app import create_app
    from pyfi.web.app import install

    app = create_app(flags)
    install(app)
    return app
