"""The one lazy context object shared by every command.

Settings are resolved on first use (not for ``--help``), a session is opened
per command, and the acting user is the configured login user, unless the
session is logged in as a pyfi user's own PostgreSQL role (a password is
configured): then it is that role (``pyfi.core.login``).
"""
from __future__ import annotations

import click

from pyfi.core.context import CoreContext


class AppContext(CoreContext):
    """The CLI's context: the shared core context plus the --debug flag."""

    @property
    def debug(self) -> bool:
        return bool(self.flags.get("debug"))


pass_app = click.make_pass_decorator(AppContext)


def warn(notes: list[str]) -> None:
    """Tell the user, on stderr, what they should know about what they just did."""
    for note in notes:
        click.echo(f"Warning: {note}", err=True)
