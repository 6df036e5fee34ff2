"""What ``GET /metrics`` reports, read from the database at scrape time.

Each reading is one aggregate query (calls by socket and state; workers and
agents by status) or one bounded read: durations come from the calls that
started within :data:`DURATION_WINDOW` seconds, at most
:data:`DURATION_ROWS` of them, so a scrape costs the same with a hundred
calls or ten million. Statuses are the ones ``ls`` shows (a stale heartbeat
reads as lost). No right is asked: these are counts, and the API decides who
may scrape them (docs/access.rst).
"""
from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pyfi.config import Settings
from pyfi.core.liveness import effective_status, shown_worker_status
from pyfi.db.base import utcnow
from pyfi.db.models import Agent, Call, Processor, Socket, Worker
from pyfi.enums import CallState

#: seconds back from a scrape whose started calls make the duration histogram
DURATION_WINDOW = 600
#: the most calls read for the duration histogram in one scrape
DURATION_ROWS = 20_000
#: what a call of no socket (deleted since) is counted under
NO_SOCKET = ""


@dataclass(frozen=True)
class Duration:
    socket: str
    seconds: float


def calls_by_socket_and_state(session: Session) -> dict[tuple[str, str], int]:
    """(socket name, state) -> number of recorded calls, in one GROUP BY."""
    query = (select(Socket.name, Call.state, func.count()).select_from(Call)
             .outerjoin(Socket, Socket.id == Call.socket_id).group_by(Socket.name, Call.state))
    return {(name or NO_SOCKET, str(state)): count for name, state, count in session.execute(query)}


def pending_by_socket(session: Session) -> dict[str, int]:
    """Socket name -> calls recorded as pending: queued, no worker has taken them yet (every socket, 0 too)."""
    counted = {name: count for (name, state), count in calls_by_socket_and_state(session).items()
               if state == CallState.PENDING}
    return {name: counted.get(name, 0) for name in session.scalars(select(Socket.name))} | counted


def recent_durations(session: Session, now: dt.datetime | None = None) -> list[Duration]:
    """How long each finished call that started in the window ran (started to finished)."""
    since = (now or utcnow()) - dt.timedelta(seconds=DURATION_WINDOW)
    query = (select(Socket.name, Call.started, Call.finished).select_from(Call)
             .outerjoin(Socket, Socket.id == Call.socket_id)
             .where(Call.started >= since, Call.finished.is_not(None))
             .order_by(Call.started.desc()).limit(DURATION_ROWS))
    return [Duration(name or NO_SOCKET, max(0.0, (finished - started).total_seconds()))
            for name, started, finished in session.execute(query)]


def workers_by_status(session: Session) -> dict[tuple[str, str], int]:
    """(processor name, status as ``ls workers`` shows it) -> number of worker rows."""
    rows = session.execute(select(Worker, Processor.name).join(Processor, Processor.id == Worker.processor_id))
    return dict(Counter((name, str(shown_worker_status(worker))) for worker, name in rows))


def agents_by_status(session: Session) -> dict[str, int]:
    """Status as ``ls agents`` shows it -> number of agents."""
    return dict(Counter(str(effective_status(agent)) for agent in session.scalars(select(Agent))))


def broker_queues(session: Session) -> dict[str, str]:
    """Socket name -> the broker queue its workers consume (:func:`pyfi.messaging.routing.broker_queue`)."""
    from pyfi.messaging.routing import broker_queue

    return {socket.name: broker_queue(socket) for socket in session.scalars(select(Socket))}


def broker_app(settings: Settings) -> Any:
    """The Celery app :func:`broker_depths` asks the broker with (made once per collector)."""
    from pyfi.messaging.app import make_app

    return make_app(settings)


def broker_depths(app: Any, queues: dict[str, str], timeout: float = 2.0) -> dict[str, int] | None:
    """Socket name -> messages waiting in its broker queue, as the broker counts them; None when it cannot be asked.

    One connection and one passive declare per queue (a count, nothing is taken). A queue the broker does not
    have yet (no call was ever sent to the socket) counts 0.
    """
    from pyfi.core.results import BROKER_RETRIES

    try:
        with app.connection_for_read() as connection:
            connection.ensure_connection(**BROKER_RETRIES, timeout=timeout)
            return {name: _depth(connection, queue) for name, queue in queues.items()}
    except Exception:  # noqa: BLE001 - every transport raises its own errors: the scrape falls back to pending counts
        return None


def _depth(connection: Any, queue: str) -> int:
    channel = connection.channel()
    try:
        return int(channel.queue_declare(queue=queue, passive=True).message_count)
    except connection.channel_errors:  # no such queue yet
        return 0
    finally:
        _close_quietly(channel)


def _close_quietly(channel: Any) -> None:
    try:
        channel.close()
    except Exception:  # noqa: BLE001 - an AMQP channel a failed declare closed already
        pass
