"""What every front end needs to act on the model: settings, sessions, the acting user.

The CLI's context and the Python client's context both build on this, so they
resolve settings the same way (flag > environment > ini > default), log in the
same way, and act as the same user: the configured login user, or, when a
password is configured on PostgreSQL, the pyfi user's own database role
(``pyfi.core.login``). Nothing is resolved until first use.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from pyfi.config import Settings, resolve


class CoreContext:
    def __init__(self, flags: dict[str, Any] | None = None, settings: Settings | None = None) -> None:
        self.flags = dict(flags or {})
        self._settings = settings
        self._acting: str | None = None
        self._checked = False

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
    def actor(self) -> Any:
        """Who acts (a pyfi login role is always itself; known once a session is open)."""
        from pyfi.core.access import Actor

        return Actor(self._acting or self.settings.user, git_allow=self.settings.git_allow)

    @contextmanager
    def session(self) -> Iterator[Any]:
        """A transaction on an initialized, current database: committed at the end, rolled back on error."""
        from sqlalchemy.exc import ProgrammingError

        from pyfi.core.login import acting_user
        from pyfi.db.engine import check_initialized, session_scope
        from pyfi.errors import BackendUnavailable

        if not self._checked:
            check_initialized(self.db_url)
            self._checked = True
        try:
            with session_scope(self.db_url) as session:
                self._acting = acting_user(session, self.settings.user)
                yield session
        except (BackendUnavailable, ProgrammingError):
            from pyfi.core.schema import check_current

            check_current(self.db_url)  # a schema older than pyfi fails like this: say so
            raise
