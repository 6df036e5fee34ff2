"""kombu's SQLAlchemy transport, made safe and quick for the embedded SQLite broker.

Quick: the stock transport polls an idle queue once a second and hands
every transport option to ``create_engine``, so the polling interval cannot
be set through options; a subclass is the one place to change it. Celery's
blocking loop for such transports waits up to 2 s in ``drain_events``
before it looks at shutdown requests or runs callbacks scheduled with
``call_soon`` (pause/resume); capping the wait makes SIGTERM and pause take
effect in a fraction of a second.

Safe: the stock transport hides a message it hands out (``visible`` false)
and never looks at it again. A graceful stop puts unacknowledged messages
back, but a consumer killed with SIGKILL (the OOM killer) took its calls
with it for good, and acknowledged messages stayed in the table forever.
Here every message handed out is noted with the process that took it
(``pyfi_delivery``); an acknowledged or requeued one is deleted, and the
messages of a process that is gone are made visible again by the next
consumer that polls. The embedded broker is one SQLite file on one
machine, so "gone" is a question /proc answers.
"""
from __future__ import annotations

import datetime as dt
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from kombu.transport import virtual
from kombu.transport.sqlalchemy import Channel as _SqlaChannel
from kombu.transport.sqlalchemy import Transport as _SqlaTransport
from kombu.transport.sqlalchemy.models import metadata
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import loads
from sqlalchemy import Column, DateTime, Integer, String, Table, delete, select, text, update


POLLING_INTERVAL = 0.05
MAX_DRAIN_WAIT = 0.25
ORPHAN_SCAN = 2.0  # seconds between looks for messages taken by processes that are gone
ROW = "pyfi_row"  # the message's row id, in the properties of a message handed out

#: who holds each message handed out and not yet acknowledged (created next to kombu's tables)
deliveries = Table(
    "pyfi_delivery", metadata,
    Column("message_id", Integer, primary_key=True, autoincrement=False),
    Column("owner", String(200), nullable=False, index=True),
    Column("delivered_at", DateTime, nullable=False),
)


def process_owner(pid: int | None = None) -> str:
    """``host:pid:start time``: names one process for good (a pid is reused, its start time is not)."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_start_time(pid)}"


def _start_time(pid: int) -> str:
    """The process's start time (in clock ticks since boot); '-' once it has ended (a zombie has too)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return "-"
    return "-" if fields[0] in ("Z", "X") else fields[19]


def owner_gone(owner: str) -> bool:
    """Whether the process *owner* names has ended (never judged for a process of another host)."""
    host, _, rest = owner.partition(":")
    pid, _, started = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    return process_owner(int(pid)) != owner


class QoS(virtual.QoS):
    """Acknowledging a message deletes it (and its delivery note) at once."""

    channel: Channel

    def ack(self, delivery_tag: Any) -> None:
        self.channel.settle(self._delivered.get(delivery_tag))
        super().ack(delivery_tag)

    def reject(self, delivery_tag: Any, requeue: bool = False) -> None:
        message = self._delivered.get(delivery_tag)
        super().reject(delivery_tag, requeue)  # a requeued message goes back as a new row first
        self.channel.settle(message)


class Channel(_SqlaChannel):
    QoS = QoS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.owner = process_owner()
        self.scanned = 0.0
        self.settling = threading.Lock()

    def _get(self, queue: str) -> dict[str, Any]:
        queue_id = self._get_or_create(queue).id
        if time.monotonic() - self.scanned >= ORPHAN_SCAN:
            self.release_orphans()
        session, messages = self.session, self.message_cls.__table__
        if session.bind.name == "sqlite":
            session.execute(text("BEGIN IMMEDIATE TRANSACTION"))  # one taker per message
        try:
            row = session.execute(
                select(messages.c.id, messages.c.payload).where(messages.c.queue_id == queue_id)
                .where(messages.c.visible.is_(True)).order_by(messages.c.timestamp, messages.c.id)
                .limit(1).with_for_update()).first()
            if row is None:
                raise virtual.Empty()
            session.execute(update(messages).where(messages.c.id == row.id).values(visible=False))
            session.execute(deliveries.insert().values(message_id=row.id, owner=self.owner,
                                                       delivered_at=dt.datetime.now(dt.timezone.utc)))
            payload = loads(bytes_to_str(row.payload))
            payload.setdefault("properties", {})[ROW] = row.id
            return payload
        finally:
            session.commit()

    def settle(self, message: Any) -> None:
        """Delete a message that was acknowledged or put back; called from the pool's threads too."""
        row = (getattr(message, "properties", None) or {}).get(ROW)
        if row is None:
            return
        engine, _ = self._open()
        with self.settling, engine.begin() as conn:  # its own connection: the channel's session is the loop's
            conn.execute(delete(self.message_cls.__table__).where(self.message_cls.__table__.c.id == row))
            conn.execute(delete(deliveries).where(deliveries.c.message_id == row))

    def _restore(self, message: Any) -> None:
        super()._restore(message)  # back at the end of its queue, as a new row
        self.settle(message)

    def release_orphans(self) -> None:
        """Make the messages of processes that are gone visible again, so another consumer takes them."""
        self.scanned = time.monotonic()
        session, messages = self.session, self.message_cls.__table__
        owners = session.execute(select(deliveries.c.owner).distinct()).scalars().all()
        gone = [owner for owner in owners if owner != self.owner and owner_gone(owner)]
        if gone:
            taken = select(deliveries.c.message_id).where(deliveries.c.owner.in_(gone))
            session.execute(update(messages).where(messages.c.id.in_(taken)).values(visible=True))
            session.execute(delete(deliveries).where(deliveries.c.owner.in_(gone)))
        session.commit()


class Transport(_SqlaTransport):
    Channel = Channel
    polling_interval = POLLING_INTERVAL

    def drain_events(self, connection: Any, timeout: float | None = None) -> Any:
        wait = MAX_DRAIN_WAIT if timeout is None else min(timeout, MAX_DRAIN_WAIT)
        return super().drain_events(connection, timeout=wait)
