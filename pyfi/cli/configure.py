"""``pyfi -c``: ask for the URIs (current values as defaults) and write the ini file."""
from __future__ import annotations

import click

from pyfi.config import check_uri, write_ini
from pyfi.private import secure_home

PROMPTS = (("db", "Database URI"), ("broker", "Message broker URI"), ("backend", "Task result backend URI"),
           ("pubsub", "Pub/sub URI (redis://... or sqlite:///...)"), ("user", "Login user"))


def configure(app) -> None:  # noqa: ANN001 - AppContext
    settings = app.settings
    values = {}
    for name, label in PROMPTS:
        value = click.prompt(label, default=getattr(settings, name))
        if name != "user":
            check_uri(name, value)
        values[name] = value
    secure_home(settings.home)
    write_ini(settings.ini, values)
    click.echo(f"Wrote {settings.ini}")
