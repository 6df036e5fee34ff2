"""The client's planned routes: no database round trip per call, and changes reach it within the bound.

A client context plans a socket's routes (checking RUN_TASK) and sends along
them for ``ROUTES_TRUSTED_FOR`` seconds. Sending needs no worker: the calls
wait on the embedded broker in the test's home, which goes with it.
"""
from __future__ import annotations

import time
from typing import Any, Callable

import pytest

from pyfi.db.base import utcnow

from clientnet import wait_for


def contexts() -> tuple[Any, Any]:
    """(the administrator's context, joe's), joe holding READ_SOCKET and RUN_TASK."""
    from pyfi.client import Context
    from pyfi.core.access import Actor
    from pyfi.core.users import add_privilege
    from pyfi.db.models import User

    admin = Context()
    with admin.session() as session:
        session.add(User(name="joe", owner="admin"))
        session.flush()
        for right in ("READ_SOCKET", "RUN_TASK"):
            add_privilege(session, Actor("admin"), right, user="joe")
    return admin, Context(user="joe")  # (logs in as the database owner, who names the pyfi user)


def network(admin: Any) -> Any:
    """A socket ``s`` on a direct queue, made by the administrator."""
    from pyfi.client import Processor, Queue, Socket

    proc = Processor("p", "sample", "/repo", context=admin)
    return Socket("s", proc, Queue("q", "direct", context=admin), "do_this", context=admin)


def statements_during(context: Any, action: Callable[[], Any]) -> int:
    """How many SQL statements the context's own database engine ran during ``action``, in the thread that sends.

    (The context's pending records are written by a thread of its own: :mod:`pyfi.client.pending`.)
    """
    import threading

    from sqlalchemy import event

    from pyfi.db.engine import get_engine

    seen: list[str] = []
    engine = get_engine(context.db_url)
    sender = threading.get_ident()

    def listener(*args: Any) -> None:  # (conn, cursor, statement, ...)
        if threading.get_ident() == sender:
            seen.append(args[2])

    event.listen(engine, "before_cursor_execute", listener)
    try:
        action()
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    return len(seen)


def stale_sends(sees_the_change: Callable[[], bool], bound: float) -> list[float]:
    """Send until a send sees the change; the times (time.monotonic) the sends before it started."""
    stale: list[float] = []

    def send() -> bool:
        started = time.monotonic()
        if sees_the_change():
            return True
        stale.append(started)
        return False

    wait_for(send, timeout=bound + 30, what="a send that sees the change", interval=0.05)
    return stale


def refused(send: Callable[[], Any], error: type[Exception]) -> Callable[[], bool]:
    def check() -> bool:
        try:
            send()
        except error:
            return True
        return False

    return check


def test_sends_in_steady_state_touch_no_database(db_url):
    from pyfi.client import Socket, pipeline

    admin, joe = contexts()
    network(admin)
    sock = Socket("s", context=joe)
    sock.delay("warm")  # plans the route
    assert statements_during(joe, lambda: [sock.delay(str(n)) for n in range(20)]) == 0
    assert statements_during(joe, lambda: pipeline([sock.s("a"), sock]).delay()) == 0
    sent = utcnow()
    joe.pending.flush()  # what the background thread writes: every call sent, as pending
    with admin.session() as session:
        from pyfi.db.models import Call

        pending = session.query(Call).filter(Call.state == "pending", Call.sender == "joe").all()
        assert len(pending) == 23
        assert all(call.created <= sent for call in pending)  # each stamped when it was sent, not when written


def test_a_revoked_right_stops_a_sending_client_within_the_bound(db_url):
    from pyfi.client import Socket
    from pyfi.client.context import ROUTES_TRUSTED_FOR
    from pyfi.core.access import Actor
    from pyfi.core.users import delete_privilege
    from pyfi.errors import PermissionDenied

    admin, joe = contexts()
    network(admin)
    sock = Socket("s", context=joe)
    sock.delay("before")
    with admin.session() as session:
        delete_privilege(session, Actor("admin"), "RUN_TASK", user="joe")
    revoked = time.monotonic()
    stale = stale_sends(refused(lambda: sock.delay("after"), PermissionDenied), ROUTES_TRUSTED_FOR)
    assert all(started < revoked + ROUTES_TRUSTED_FOR for started in stale)
    with pytest.raises(PermissionDenied, match="lacks the right RUN_TASK"):
        sock.delay("still refused")


def test_a_moved_socket_is_followed_and_a_deleted_one_refused_within_the_bound(db_url):
    from pyfi.client import Queue, Socket
    from pyfi.client.context import ROUTES_TRUSTED_FOR
    from pyfi.core.access import Actor
    from pyfi.core.objects import delete
    from pyfi.core.kinds import kind
    from pyfi.errors import NotFound

    admin, joe = contexts()
    mine = network(admin)
    sock = Socket("s", context=joe)
    assert len(sock.delay("one destination").ids) == 1
    fan = Queue("fan", "fanout", context=admin)
    Socket("peer", "p", fan, "do_something", context=admin)
    Socket("s", queue=fan, context=admin)  # moved onto a fanout queue with a peer: two destinations
    moved = time.monotonic()
    assert len(mine.delay("x").ids) == 2  # the context that moved it sends along the new routes at once
    stale = stale_sends(lambda: len(sock.delay("x").ids) == 2, ROUTES_TRUSTED_FOR)
    assert all(started < moved + ROUTES_TRUSTED_FOR for started in stale)
    with admin.session() as session:
        delete(session, Actor("admin"), kind("socket"), "s", None)
    deleted = time.monotonic()
    stale = stale_sends(refused(lambda: sock.delay("gone"), NotFound), ROUTES_TRUSTED_FOR)
    assert all(started < deleted + ROUTES_TRUSTED_FOR for started in stale)
