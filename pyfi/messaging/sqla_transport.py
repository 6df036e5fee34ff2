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
(``pyfi_delivery``); an acknowledged one is deleted, one put back is made
visible again (from whichever thread, on a connection of its own: the
channel's session belongs to the polling loop), and the messages of a
process that is gone are made visible again by the next consumer that
polls. Every take gets a delivery tag of its own. The embedded broker is one SQLite file on one
machine, so "gone" is a question /proc answers.
"""
from __future__ import annotations

import datetime as dt
import os
import logging
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from kombu.transport import virtual
from kombu.transport.sqlalchemy import Channel as _SqlaChannel
from kombu.transport.sqlalchemy import Transport as _SqlaTransport
from kombu.transport.sqlalchemy.models import metadata
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps, loads
from sqlalchemy import Column, DateTime, Integer, String, Table, delete, select, text, update
from sqlalchemy.exc import OperationalError


log = logging.getLogger(__name__)

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
    """The process's start time (clock ticks since boot); '-' once it has ended, '?' when /proc does not say."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return "-"
    except (OSError, IndexError):
        return "?"  # hidden (hidepid) or unreadable: never taken for gone
    return "-" if fields[0] in ("Z", "X") else fields[19]


def owner_gone(owner: str) -> bool:
    """Whether the process *owner* names has ended (never judged for a process of another host)."""
    host, _, rest = owner.partition(":")
    pid, _, _started = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    now = _start_time(int(pid))
    return now != "?" and f"{host}:{pid}:{now}" != owner


class QoS(virtual.QoS):
    """Acknowledging a message deletes it; putting it back makes the same row visible again."""

    channel: Channel

    def ack(self, delivery_tag: Any) -> None:
        message = self._delivered.get(delivery_tag)
        super().ack(delivery_tag)  # done in memory first: a delete that fails must not hold the call's slot
        self.channel.settle(message, requeue=False)

    def reject(self, delivery_tag: Any, requeue: bool = False) -> None:
        message = self._delivered.get(delivery_tag)
        super().reject(delivery_tag, requeue)  # a requeue goes through Channel._restore
        if not requeue:
            self.channel.settle(message, requeue=False)


class Channel(_SqlaChannel):
    QoS = QoS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.owner = process_owner()
        self.scanned = 0.0
        self.settling = threading.Lock()

    def _get(self, queue: str) -> dict[str, Any]:
        queue_id = self._get_or_create(queue).id
        session = self.session
        try:
            if time.monotonic() - self.scanned >= ORPHAN_SCAN:
                self.release_orphans()
            payload = self._take(session, queue_id)
        except virtual.Empty:
            raise
        except Exception:  # noqa: BLE001 - never leave the session inside a transaction holding SQLite's lock
            session.rollback()
            raise
        if payload is None:
            raise virtual.Empty()
        return payload

    def _take(self, session: Any, queue_id: int) -> dict[str, Any] | None:
        """The next visible message of the queue, hidden and noted as this process's, in one transaction."""
        messages = self.message_cls.__table__
        if session.bind.name == "sqlite":
            session.execute(text("BEGIN IMMEDIATE TRANSACTION"))  # one taker per message
        row = session.execute(
            select(messages.c.id, messages.c.payload).where(messages.c.queue_id == queue_id)
            .where(messages.c.visible.is_(True)).order_by(messages.c.timestamp, messages.c.id)
            .limit(1).with_for_update()).first()
        if row is None:
            session.commit()
            return None
        try:
            payload = loads(bytes_to_str(row.payload))
            properties = payload["properties"]
        except (ValueError, TypeError, KeyError) as exc:  # it could never be run: do not hand it to worker after worker
            session.execute(delete(messages).where(messages.c.id == row.id))
            session.commit()
            log.error("dropped broker message %s: it cannot be decoded (%s)", row.id, exc)
            return None
        session.execute(update(messages).where(messages.c.id == row.id).values(visible=False))
        session.execute(deliveries.insert().values(message_id=row.id, owner=self.owner,
                                                   delivered_at=dt.datetime.now(dt.timezone.utc)))
        session.commit()
        properties[ROW] = row.id
        properties["delivery_tag"] = str(uuid.uuid4())  # one per take: a message put back is taken under a new tag
        return payload

    def settle(self, message: Any, requeue: bool) -> None:
        """Delete a message that was acknowledged, or make it visible again; called from the pool's threads too.

        Its own connection, never the channel's session: that one is the polling loop's.
        """
        row = (getattr(message, "properties", None) or {}).get(ROW)
        if row is None:
            return
        messages = self.message_cls.__table__
        engine, _ = self._open()
        try:
            with self.settling, engine.begin() as conn:
                if requeue:
                    payload = message.serializable()
                    payload["redelivered"] = True
                    conn.execute(update(messages).where(messages.c.id == row).values(visible=True, payload=dumps(payload)))
                else:
                    conn.execute(delete(messages).where(messages.c.id == row))
                conn.execute(delete(deliveries).where(deliveries.c.message_id == row))
        except OperationalError as exc:
            if requeue:
                raise  # kombu reports a message it could not put back
            log.warning("could not delete acknowledged broker message %s (%s): it runs again only if this worker "
                        "is killed before it stops", row, exc)

    def _restore(self, message: Any) -> None:
        if ROW in (getattr(message, "properties", None) or {}):
            self.settle(message, requeue=True)
        else:
            super()._restore(message)

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

    def close(self) -> None:
        super().close()
        if self._session is not None:  # kombu leaves it open, and with it any lock it holds
            self._session.close()
            self._session = None


class Transport(_SqlaTransport):
    Channel = Channel
    polling_interval = POLLING_INTERVAL

    def drain_events(self, connection: Any, timeout: float | None = None) -> Any:
        wait = MAX_DRAIN_WAIT if timeout is None else min(timeout, MAX_DRAIN_WAIT)
        return super().drain_events(connection, timeout=wait)
