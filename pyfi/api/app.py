"""The REST API as a FastAPI application: :func:`create_app`.

Everything is served under ``/api/``: the OpenAPI document at
``/api/openapi.json``, interactive docs at ``/api/docs``, and the routers of
the modules :data:`ROUTERS` names (each exposes ``router``, with paths
relative to ``/api``). Routes call ``pyfi.core`` exactly as the CLI does, so
rights and errors are the same; the app's settings are the CLI's (flags >
environment > ini > defaults), kept as a :class:`CoreContext` on
``app.state.core``.
"""
from __future__ import annotations

import importlib
import threading
from typing import Any

from fastapi import FastAPI

import pyfi
from pyfi.api import errors, metrics
from pyfi.api.throttle import LoginThrottle
from pyfi.core.context import CoreContext

#: the router modules the app includes, in this order
ROUTERS: tuple[str, ...] = (
    "pyfi.api.routers.token",
    "pyfi.api.routers.queues",
    "pyfi.api.routers.processors",
    "pyfi.api.routers.sockets",
    "pyfi.api.routers.plugs",
    "pyfi.api.routers.users",
    "pyfi.api.routers.roles",
    "pyfi.api.routers.privileges",
    "pyfi.api.routers.nodes",
    "pyfi.api.routers.agents",
    "pyfi.api.routers.workers",
    "pyfi.api.routers.deployments",
    "pyfi.api.routers.schedulers",
    "pyfi.api.routers.calls", "pyfi.api.routers.events",
)

PREFIX = "/api"
DESCRIPTION = ("pyfi's network over HTTP: the objects the CLI manages, with the same rights and errors. "
               "Log in at POST /api/token (OAuth2 password form) and send `Authorization: Bearer TOKEN`.")


def create_app(flags: dict[str, Any] | None = None) -> FastAPI:
    """The API application for these settings flags (``db``, ``broker``, ``ini``... as the CLI takes them).

    ``token_hours`` (not a setting): the life of the tokens ``POST /api/token`` issues.
    """
    from pyfi.core.tokens import DEFAULT_HOURS, check_hours

    flags = dict(flags or {})
    token_hours = check_hours(float(flags.pop("token_hours", None) or DEFAULT_HOURS))
    app = FastAPI(title="pyfi", version=pyfi.__version__, description=DESCRIPTION,
                  openapi_url=f"{PREFIX}/openapi.json", docs_url=f"{PREFIX}/docs", redoc_url=None)
    app.state.core = CoreContext(flags)
    app.state.core.use_token = False  # a token in the ini of who runs the server names no caller
    app.state.token_hours = token_hours
    app.state.throttle = LoginThrottle()
    app.state.closing = threading.Event()  # set when the server is asked to stop: open event streams end
    errors.install(app)
    for module in ROUTERS:
        app.include_router(importlib.import_module(module).router, prefix=PREFIX, responses=errors.RESPONSES)
    metrics.mount(app)  # GET /metrics, outside /api: Prometheus's text format
    return app


def check_database(app: FastAPI, who: str = "the API server") -> None:
    """Before serving: the database has pyfi's schema, and on PostgreSQL the app logs in as its owner.

    Rights are checked in core for the user each token names, as the CLI
    does; the database's own grants (a pyfi user's login) do not apply, so
    the server needs the login that writes for every user, as an agent does.
    """
    from pyfi.core.login import check_owner_login

    with app.state.core.session() as session:
        check_owner_login(session, who)
