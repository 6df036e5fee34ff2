"""kombu's SQLAlchemy transport, tuned for the embedded SQLite broker.

The stock transport polls an idle queue once a second and hands every
transport option to ``create_engine``, so the polling interval cannot be set
through options; a subclass is the one place to change it.

Celery's blocking loop for such transports waits up to 2 s in
``drain_events`` before it looks at shutdown requests or runs callbacks
scheduled with ``call_soon`` (pause/resume). Capping the wait keeps the
worker responsive: SIGTERM and pause take effect in a fraction of a second.
"""
from __future__ import annotations

from typing import Any

from kombu.transport.sqlalchemy import Transport as _SqlaTransport

POLLING_INTERVAL = 0.05
MAX_DRAIN_WAIT = 0.25


class Transport(_SqlaTransport):
    polling_interval = POLLING_INTERVAL

    def drain_events(self, connection: Any, timeout: float | None = None) -> Any:
        wait = MAX_DRAIN_WAIT if timeout is None else min(timeout, MAX_DRAIN_WAIT)
        return super().drain_events(connection, timeout=wait)
