"""The one lazy context object shared by every command.

Settings are resolved on first use (not for ``--help``), a session is opened
per command, and the acting user is the configured login user, unless the
session is logged in as a pyfi user's own PostgreSQL role (a password is
configured): then it is that role (``pyfi.core.login``).
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
        self._acting: str | None = None

    @property
    def debug(self) -> bool:
        return bool(self.flags.get("debug"))

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = resolve(self.flags)
        return self._settings

    @property
    def db_url(self) -> str:
        """The database URL, logging in as the pyfi user when a password is configured."""
        from pyfi.core.login import login_url

        return login_url(self.settings.db, self.settings.user, self.settings.password)

    @property
    def actor(self):  # noqa: ANN201 - pyfi.core.access.Actor, imported lazily
        from pyfi.core.access import Actor

        return Actor(self._acting or self.settings.user, git_allow=self.settings.git_allow)

    @contextmanager
    def session(self) -> Iterator[Any]:
        """A transaction on an initialized, current database (NotInitialized otherwise)."""
        from sqlalchemy.exc import ProgrammingError

        from pyfi.core.login import acting_user
        from pyfi.db.engine import check_initialized, session_scope
        from pyfi.errors import BackendUnavailable

        check_initialized(self.db_url)
        try:
            with session_scope(self.db_url) as session:
                self._acting = acting_user(session, self.settings.user)
                yield session
        except (BackendUnavailable, ProgrammingError):
            from pyfi.core.schema import check_current

            check_current(self.db_url)  # a schema older than pyfi fails like this: say so
            raise


pass_app = click.make_pass_decorator(AppContext)
