"""``pyfi web start``: the dashboard and the REST API, served by one process until Ctrl-C or SIGTERM.

The options are the original pyfi documentation's: ``-ip`` (the address to
listen on, this machine only unless told otherwise) and ``-p`` (the port).
"""
from __future__ import annotations

import click

from pyfi.cli.context import AppContext, pass_app

#: the dashboard's port when -p is not given (the API alone serves on 8000)
DEFAULT_PORT = 8001


@click.group()
def web() -> None:
    """Web server admin"""


@web.command("start")
@click.option("-ip", "--ip", "host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every interface; then put TLS in front of it)")
@click.option("-p", "--port", type=click.IntRange(1, 65535), default=DEFAULT_PORT, show_default=True,
              help="Port to listen on")
@click.option("--token-hours", type=click.FloatRange(min=0, min_open=True), default=12.0, show_default=True,
              help="Hours a login (the page's or POST /api/token's) stays valid")
@pass_app
def web_start(app: AppContext, host: str, port: int, token_hours: float) -> None:
    """Serve the web dashboard, with the REST API under /api/"""
    from pyfi.cli.api import start_server
    from pyfi.web import create_web_app

    start_server(create_web_app({**app.flags, "token_hours": token_hours}), host, port,
                 f"pyfi dashboard on http://{host}:{port}/ (API: /api/); Ctrl-C stops it")
