"""``pyfi api start``: serve the REST API (``pyfi.api``) until Ctrl-C or SIGTERM."""
from __future__ import annotations

from typing import Any

import click

from pyfi.cli.context import AppContext, pass_app


@click.group()
def api() -> None:
    """API server admin"""


@api.command("start")
@click.option("-ip", "--ip", "host", default="127.0.0.1", show_default=True, help="Address to listen on")
@click.option("-p", "--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on")
@click.option("--token-hours", type=click.FloatRange(min=0, min_open=True), default=12.0, show_default=True,
              help="Hours a token from POST /api/token stays valid")
@pass_app
def api_start(app: AppContext, host: str, port: int, token_hours: float) -> None:
    """Serve the REST API under /api/ (OpenAPI document at /api/openapi.json, docs at /api/docs)"""
    from pyfi.api.app import create_app

    start_server(create_app({**app.flags, "token_hours": token_hours}), host, port,
                 f"pyfi API on http://{host}:{port}/api/ (docs: /api/docs); Ctrl-C stops it")


def start_server(server_app: Any, host: str, port: int, banner: str) -> None:
    """Serve ``server_app`` (the API, or the dashboard with it) once its database and port are known good."""
    from pyfi.api.app import check_database
    from pyfi.api.server import check_bindable, serve

    check_database(server_app)
    check_bindable(host, port)
    click.echo(banner, err=True)
    serve(server_app, host, port)
