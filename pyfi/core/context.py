"""What every front end needs to act on the model: settings, sessions, the acting user.

The CLI's context and the Python client's context both build on this, so they
resolve settings the same way (flag > environment > ini > default), log in the
same way, and act as the same user: the configured login user, or, when a
password is configured on PostgreSQL, the pyfi user's own database role
(``pyfi.core.login``). A token from ``pyfi login`` (``[login] token`` or
``PYFI_TOKEN``) names the user instead, checked when each session opens
(``pyfi.core.tokens``). Nothing is resolved until first use.
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
        #: act as the user of the token ``pyfi login`` stored, if any (``pyfi login`` and ``logout`` do not)
        self.use_token = True

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
                self._act_by_token(session)
                yield session
        except (BackendUnavailable, ProgrammingError):
            from pyfi.core.schema import check_current

            check_current(self.db_url)  # a schema older than pyfi fails like this: say so
            raise

    def _act_by_token(self, session: Any) -> None:
        """Over a login that is not a pyfi user's own role, a configured token names who acts (checked now)."""
        from pyfi.core.login import own_login
        from pyfi.core.tokens import configured_token, verify

        token = configured_token(self.settings) if self.use_token else None
        if token and own_login(session) is None:
            self._acting = verify(session, token)
