"""The one lazy context object shared by every command.

Settings are resolved on first use (not for ``--help``), a session is opened
per command, and the acting user is the configured login user.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import click

from pyfi.config import Settings, resolve


class AppContext:
    def __init__(self, flags: dict[str, Any]) -> None:
        self.flags = flags
        self._settings: Settings | None = None

    @property
    def debug(self) -> bool:
        return bool(self.flags.get("debug"))

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = resolve(self.flags)
        return self._settings

    @property
    def actor(self):  # noqa: ANN201 - pyfi.core.access.Actor, imported lazily
        from pyfi.core.access import Actor

        return Actor(self.settings.user)

    @contextmanager
    def session(self) -> Iterator[Any]:
        """A transaction on an initialized, current database (NotInitialized otherwise)."""
        from sqlalchemy.exc import ProgrammingError

        from pyfi.db.engine import check_initialized, session_scope
        from pyfi.errors import BackendUnavailable

        check_initialized(self.settings.db)
        try:
            with session_scope(self.settings.db) as session:
                yield session
        except (BackendUnavailable, ProgrammingError):
            from pyfi.core.schema import check_current

            check_current(self.settings.db)  # a schema older than pyfi fails like this: say so
            raise


pass_app = click.make_pass_decorator(AppContext)
