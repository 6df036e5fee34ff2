"""The client's one lazy context: settings, database sessions and the Celery app.

Nothing is resolved or opened at import time, so a processor module that
imports ``pyfi.client`` (for the decorators) loads without a database.
Settings follow the CLI's order (argument > PYFI_* environment > ini file >
embedded default), and so does the acting user (``pyfi.cli.context``): the
configured login user, or, when a password is configured on PostgreSQL,
the pyfi user's own database role. The client is therefore subject to
exactly the privilege checks (and the git allow-list) of the CLI.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from pyfi.config import Settings, resolve

#: seconds a plain call (``socket(...)``) waits for its result
DEFAULT_TIMEOUT = 60.0


class Context:
    """Where the client works: one database, broker and backend, as one user."""

    def __init__(self, settings: Settings | None = None, timeout: float = DEFAULT_TIMEOUT, **flags: Any) -> None:
        self._settings = settings
        self._flags = flags
        self._app: Any = None
        self._checked = False
        self._acting: str | None = None
        self.timeout = timeout

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = resolve(self._flags)
        return self._settings

    @property
    def db_url(self) -> str:
        """The database URL, logging in as the pyfi user when a password is configured."""
        from pyfi.core.login import login_url

        return login_url(self.settings.db, self.settings.user, self.settings.password)

    @property
    def actor(self) -> Any:
        """Who acts: known once a session is open (a pyfi login role is always itself)."""
        from pyfi.core.access import Actor

        return Actor(self._acting or self.settings.user, git_allow=self.settings.git_allow)

    @contextmanager
    def session(self) -> Iterator[Any]:
        """A transaction: committed when the block ends, rolled back on error."""
        from pyfi.core.login import acting_user
        from pyfi.db.engine import check_initialized, session_scope

        if not self._checked:
            check_initialized(self.db_url)
            self._checked = True
        with session_scope(self.db_url) as session:
            self._acting = acting_user(session, self.settings.user)
            yield session

    @property
    def app(self) -> Any:
        """The Celery app that sends calls and reads results (built on first use)."""
        if self._app is None:
            from pyfi.messaging.app import make_app

            self._app = make_app(self.settings, main="pyfi.client")
        return self._app

    def close(self) -> None:
        """Release broker and backend connections (the context stays usable)."""
        if self._app is not None:
            self._app.close()
            self._app = None


_current: Context | None = None


def current() -> Context:
    """The default context, created from the environment on first use."""
    global _current
    if _current is None:
        _current = Context()
    return _current


def configure(settings: Settings | None = None, timeout: float = DEFAULT_TIMEOUT, **flags: Any) -> Context:
    """Replace the default context, e.g. ``configure(db="postgresql://...", broker="redis://...")``.

    ``flags`` are the CLI's settings by name: db, broker, backend, pubsub, user, ini.
    """
    global _current
    if _current is not None:
        _current.close()
    _current = Context(settings, timeout, **flags)
    return _current
