"""What the benchmarks read of pyfi's records: finished calls and their events, counted in the database."""
from __future__ import annotations

import time

from pyfi.testing import wait_for


def recorded(db_url: str) -> tuple[int, int]:
    """(finished calls, events) in the database."""
    from sqlalchemy import func, select

    from pyfi.db.engine import session_scope
    from pyfi.db.models import Call, Event
    from pyfi.enums import CallState

    with session_scope(db_url) as session:
        finished = session.scalar(select(func.count()).select_from(Call).where(Call.state == CallState.FINISHED))
        events = session.scalar(select(func.count()).select_from(Event))
    return finished or 0, events or 0


def in_order(db_url: str) -> int:
    """Finished calls whose events are received <= prerun <= postrun in time."""
    from sqlalchemy import func, select
    from sqlalchemy.orm import aliased

    from pyfi.db.engine import session_scope
    from pyfi.db.models import Call, Event
    from pyfi.enums import CallState, EventName

    received, prerun, postrun = aliased(Event), aliased(Event), aliased(Event)
    query = (select(func.count()).select_from(Call)
             .join(received, (received.call_id == Call.id) & (received.name == EventName.RECEIVED))
             .join(prerun, (prerun.call_id == Call.id) & (prerun.name == EventName.PRERUN))
             .join(postrun, (postrun.call_id == Call.id) & (postrun.name == EventName.POSTRUN))
             .where(Call.state == CallState.FINISHED, received.created <= prerun.created,
                    prerun.created <= postrun.created))
    with session_scope(db_url) as session:
        return session.scalar(query) or 0


def wait_recorded(db_url: str, calls: int, timeout: float = 120.0, interval: float = 0.02) -> float:
    """Seconds until every call sent so far is recorded as finished with its three events (looked at every
    ``interval`` s: each look counts every call and event, on a database whose CPU the benchmark counts)."""
    began = time.perf_counter()
    wait_for(lambda: recorded(db_url) == (calls, 3 * calls), timeout, interval=interval,
             what=f"{calls} finished calls and {3 * calls} events in the database (have {recorded(db_url)})")
    return time.perf_counter() - began
