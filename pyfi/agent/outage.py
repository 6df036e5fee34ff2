"""The agent's database, lost and regained: an outage of any length stops nothing.

While the database is away the agent changes nothing on its node (it cannot
read what the node should run) and its workers keep serving what they serve:
their gate keeps the keys and rights it read last, their recorder keeps the
records of the calls and writes them once the database is back (its journal
on disk holds what does not fit in memory). The agent tries again with a
growing pause (:data:`RETRY_PAUSES`), and says once that it lost the
database and once that it has it again, never once per try.
"""
from __future__ import annotations

import logging
import time
from typing import Callable

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from pyfi.db.engine import redact
from pyfi.errors import BackendUnavailable, first_line

log = logging.getLogger("pyfi.agent")

#: seconds between two tries while the database is away; the last one repeats for as long as the outage lasts
RETRY_PAUSES = (0.5, 1.0, 2.0, 4.0, 5.0)


def database_away(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached now (down, restarting, the connection broken)."""
    if isinstance(exc, BackendUnavailable):  # (session_scope's, caused by the driver's error; a broker's is not)
        exc = exc.__cause__ or exc
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, (OperationalError, InterfaceError, PoolTimeout))


class DatabaseWatch:
    """Runs the agent's steps that need the database, and keeps count of an outage."""

    def __init__(self, url: str, agent: str) -> None:
        self.url, self.agent = url, agent
        self.lost_at: float | None = None  # (time.monotonic) when the outage began; None: the database answers
        self.steady_since = time.monotonic()  # since the agent started, or the database came back
        self.tries = 0
        self.next_try = 0.0

    @property
    def away(self) -> bool:
        return self.lost_at is not None

    def due(self) -> bool:
        """Whether to try a step now (always, unless the database is away and the pause since the last try runs)."""
        return time.monotonic() >= self.next_try

    def attempt(self, step: Callable[[], None]) -> bool:
        """Run ``step``; False when the database was away (any other error goes on up)."""
        try:
            step()
        except Exception as exc:
            if not database_away(exc):
                raise
            self.lost(exc)
            return False
        self.regained()
        return True

    def lost(self, exc: BaseException) -> None:
        now = time.monotonic()
        if self.lost_at is None:
            self.lost_at = now
            cause = exc.__cause__ if isinstance(exc, BackendUnavailable) and exc.__cause__ else exc
            log.warning("agent %s lost the database %s (%s); its workers keep serving, and it tries again every "
                        "%g s at most", self.agent, redact(self.url), first_line(getattr(cause, "orig", None) or cause),
                        RETRY_PAUSES[-1])
        self.next_try = now + RETRY_PAUSES[min(self.tries, len(RETRY_PAUSES) - 1)]
        self.tries += 1

    def regained(self) -> None:
        if self.lost_at is None:
            return
        log.warning("agent %s has the database again after %.1f s (%d tries); it converges on what changed meanwhile",
                    self.agent, time.monotonic() - self.lost_at, self.tries)
        self.lost_at, self.tries, self.next_try = None, 0, 0.0
        self.steady_since = time.monotonic()
