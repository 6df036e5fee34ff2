"""The client's one lazy context: settings, database sessions and the Celery app.

Nothing is resolved or opened at import time, so a processor module that
imports ``pyfi.client`` (for the decorators) loads without a database.
Settings follow the CLI's order (argument > PYFI_* environment > ini file >
embedded default), and so does the acting user (``pyfi.core.context``): the
configured login user, or, when a password is configured on PostgreSQL,
the pyfi user's own database role. The client is therefore subject to
exactly the privilege checks (and the git allow-list) of the CLI.
"""
from __future__ import annotations

from typing import Any

from pyfi.config import Settings
from pyfi.core.context import CoreContext

#: seconds a plain call (``socket(...)``) waits for its result
DEFAULT_TIMEOUT = 60.0


class Context(CoreContext):
    """Where the client works: one database, broker and backend, as one user."""

    def __init__(self, settings: Settings | None = None, timeout: float = DEFAULT_TIMEOUT, **flags: Any) -> None:
        super().__init__(flags, settings)
        self._app: Any = None
        self.timeout = timeout

    @property
    def app(self) -> Any:
        """The Celery app that sends calls and reads results (built on first use).

        Its broker and result backend are tried when it is built, so a wrong or
        unreachable one is reported by its URI before any call is sent.
        """
        if self._app is None:
            from pyfi.core.keys import user_signer
            from pyfi.core.results import checked_app

            with self.session() as session:  # the calls it sends are signed by the acting user's key
                signer = user_signer(session, self.actor)
            self._app = checked_app(self.settings, main="pyfi.client", signer=signer)
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
