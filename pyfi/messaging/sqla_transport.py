"""kombu's SQLAlchemy transport, tuned for the embedded SQLite broker.

The stock transport polls an idle queue once a second and hands every
transport option to ``create_engine``, so the polling interval cannot be set
through options; a subclass is the one place to change it.
"""
from __future__ import annotations

from kombu.transport.sqlalchemy import Transport as _SqlaTransport

POLLING_INTERVAL = 0.05


class Transport(_SqlaTransport):
    polling_interval = POLLING_INTERVAL
