"""``GET /api/events``: the lifecycle messages ``pyfi listen`` shows, as a Server-Sent Events stream.

Query ``name`` (a room, ``<queue>.<processor>``, globs allowed) and
``channel`` (``task``, ``log``, or a glob) select what ``pyfi listen -n NAME
-c CHANNEL`` would show; both default to ``*``. Like ``listen`` it needs
READ, checked when the stream opens (403 before any event) and again every
:data:`RECHECK` seconds (a revoked right ends the stream), and it shows only
messages a processor's worker signed (:class:`pyfi.core.listening.Verifier`),
plus the calls recorded as pending, which no worker has yet.

Each message is one event whose ``data`` is the message as ``pyfi listen
--format json`` prints it; a comment line is sent every :data:`KEEPALIVE`
seconds (query ``keepalive``) so proxies keep an idle stream open. The
pub/sub reads block, so each stream has a thread of its own, which stops
when the client goes away.

The route is left out of the OpenAPI document: a stream that never ends is
no answer a generated client or the interactive docs can wait for
(docs/api.rst describes it).
"""
from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Annotated, Any, AsyncIterator, Callable

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from pyfi.api.deps import DB, Me, core_of
from pyfi.core.access import Actor, require
from pyfi.core.listening import PendingFeed, Verifier, open_listening
from pyfi.db.engine import session_scope
from pyfi.enums import Right
from pyfi.errors import InvalidInput, PyfiError
from pyfi.messaging.pubsub import Channel, pattern_for, subscriber_for

router = APIRouter(tags=["events"])

#: seconds between two keep-alive comments of an idle stream (unless the query asks for another pace)
KEEPALIVE = 15.0
KEEPALIVE_HELP = "seconds between two keep-alive comments while nothing happens"
#: seconds between two checks that the caller still holds READ
RECHECK = 10.0
#: seconds between two reads of newly pending calls (as pyfi listen)
PENDING_POLL = 1.0
#: seconds between two looks, while a stream is idle, at whether its client has gone or the server stops
LOOK_EVERY = 1.0
#: the most messages a slow client may leave unread before the stream ends
BACKLOG = 10_000

Glob = Annotated[str, Query(min_length=1, max_length=200, pattern=r"^[^\x00]*$")]


@router.get("/events", response_class=StreamingResponse, include_in_schema=False)
async def events(request: Request, session: DB, me: Me, name: Glob = "*", channel: Glob = "*",
                 keepalive: Annotated[float, Query(ge=1, le=300, description=KEEPALIVE_HELP)] = KEEPALIVE,
                 ) -> StreamingResponse:
    """Lifecycle messages as Server-Sent Events (READ): ``data`` is the message as ``pyfi listen --format json`` prints it."""
    check_channel(channel)
    namespace = await run_in_threadpool(open_listening, session, me.actor)
    core = core_of(request)
    subscriber = await run_in_threadpool(subscriber_for, core.settings.pubsub, pattern_for(name, channel), namespace)
    reader = Reader(subscriber, Verifier(core.db_url, namespace), PendingFeed(core.db_url, name, channel),
                    lambda: still_reads(core.db_url, me.actor))
    return StreamingResponse(stream(request, reader, keepalive), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def check_channel(channel: str) -> None:
    """A channel workers publish on, or a glob: a misspelt one would stream, silently, nothing."""
    if channel not in {c.value for c in Channel} and not any(ch in channel for ch in "*?["):
        known = ", ".join(c.value for c in Channel)
        raise InvalidInput(f"no processor publishes on channel {channel!r}", f"use one of {known}, or a glob such as '*'")


def still_reads(db_url: str, actor: Actor) -> bool:
    """Whether the caller holds READ now (a database that cannot say, or a user gone, ends the stream)."""
    try:
        with session_scope(db_url) as session:
            require(session, actor, Right.READ)
    except PyfiError:
        return False
    return True


class Reader(threading.Thread):
    """Reads one stream's messages in a thread of its own and hands them to the event loop."""

    def __init__(self, subscriber: Any, verifier: Verifier, pending: PendingFeed, may_read: Callable[[], bool]) -> None:
        super().__init__(daemon=True, name="pyfi-api-events")
        self.subscriber, self.verifier, self.pending, self.may_read = subscriber, verifier, pending, may_read
        self.stopped = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.out: asyncio.Queue[str | None] = asyncio.Queue()

    def begin(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.start()

    def run(self) -> None:
        self.next_pending, self.next_check = time.monotonic(), time.monotonic() + RECHECK
        try:
            while not self.stopped.is_set() and self._once():
                pass
        finally:
            self.subscriber.close()
            self._put(None)

    def _once(self) -> bool:
        """Wait up to half a second for a message, then the timed reads; False once the caller lost READ."""
        received = self.subscriber.get_message(timeout=0.5)
        if received is not None:
            self._hand(self.verifier.messages(received))
        now = time.monotonic()
        if now >= self.next_pending:
            self.next_pending = now + PENDING_POLL
            self._hand(self._pending())
        if now >= self.next_check:
            self.next_check = now + RECHECK
            if not self.may_read():
                self._put("event: error\ndata: READ was revoked\n\n")
                return False
        return True

    def _pending(self) -> list[Any]:
        try:
            return self.pending.read()
        except Exception:  # noqa: BLE001 - the database is away: what workers publish still streams
            return []

    def _hand(self, messages: list[Any]) -> None:
        for message in messages:
            self._put(f"data: {json.dumps(message.data)}\n\n")

    def _put(self, item: str | None) -> None:
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._enqueue, item)

    def _enqueue(self, item: str | None) -> None:
        if self.out.qsize() >= BACKLOG and item is not None:
            self.stopped.set()  # a client that reads nothing: end its stream rather than hold its backlog
            return
        self.out.put_nowait(item)


async def stream(request: Request, reader: Reader, keepalive: float) -> AsyncIterator[str]:
    """The response body: what the reader hands over, and a comment line whenever ``keepalive`` seconds pass idle."""
    reader.begin()
    closing = getattr(request.app.state, "closing", None) or threading.Event()
    try:
        yield ": listening\n\n"  # headers and a first line at once: the client knows it is subscribed
        idle = 0.0
        while True:
            try:
                item = await asyncio.wait_for(reader.out.get(), timeout=LOOK_EVERY)
            except asyncio.TimeoutError:
                if closing.is_set() or await request.is_disconnected():
                    return  # the server stops, or the client has gone
                idle += LOOK_EVERY
                if idle >= keepalive:
                    idle = 0.0
                    yield ": keep-alive\n\n"
                continue
            if item is None:
                return
            idle = 0.0
            yield item
    finally:
        reader.stopped.set()
