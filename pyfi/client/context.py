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

import time
from typing import Any

from pyfi.client.pending import PendingWriter
from pyfi.config import Settings
from pyfi.core.context import CoreContext

#: seconds a plain call (``socket(...)``) waits for its result
DEFAULT_TIMEOUT = 60.0
#: seconds a context sends along the routes it planned (RUN_TASK checked, sockets read) before planning again:
#: a revoked right, or a socket moved or deleted, reaches a sending client within this bound
ROUTES_TRUSTED_FOR = 1.0


class PlannedRoutes:
    """The routes a context planned, per socket name, each until its deadline (``time.monotonic``)."""

    def __init__(self, trusted_for: float = ROUTES_TRUSTED_FOR) -> None:
        self.trusted_for = trusted_for
        self._planned: dict[str, tuple[float, Any]] = {}

    def fresh(self, name: str) -> Any:
        """The routes planned for ``name`` if still within the bound, else None."""
        found = self._planned.get(name)
        if found is None or time.monotonic() >= found[0]:
            return None
        return found[1]

    def last(self, names: list[str]) -> dict[str, Any] | None:
        """The routes planned last for every one of ``names``, however long ago; None if one was never planned."""
        if not all(name in self._planned for name in names):
            return None
        return {name: self._planned[name][1] for name in names}

    def keep(self, routes: dict[str, Any], planned_at: float) -> None:
        """Trust ``routes`` until ``trusted_for`` seconds after ``planned_at`` (taken before reading them)."""
        deadline = planned_at + self.trusted_for
        for name, found in routes.items():
            self._planned[name] = (deadline, found)

    def forget(self) -> None:
        self._planned.clear()


class Context(CoreContext):
    """Where the client works: one database, broker and backend, as one user."""

    def __init__(self, settings: Settings | None = None, timeout: float = DEFAULT_TIMEOUT, **flags: Any) -> None:
        super().__init__(flags, settings)
        self._app: Any = None
        self.timeout = timeout
        self.planned = PlannedRoutes()
        self.pending = PendingWriter(self)  # the calls it sends, recorded as pending (pyfi.client.pending)

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
        """Write pending records, release broker and backend connections, forget planned routes (it stays usable)."""
        self.pending.flush()
        self.planned.forget()
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
