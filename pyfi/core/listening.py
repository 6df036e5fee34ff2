"""Listening to a network's lifecycle messages: who may, and which messages are genuine.

``pyfi listen`` needs READ, the right that ``ls calls`` needs: lifecycle
messages carry what the call records hold (states, results, output). A
message is shown only when it arrived in an envelope signed by the key of
the processor whose channel it came on (:mod:`pyfi.messaging.pubsub.network`),
sealed at most :data:`~pyfi.messaging.pubsub.network.MAX_AGE` seconds (60)
before or after this listener's clock, with a nonce it has not seen: a
``redis-cli publish`` of a forged message, a processor publishing on
another's channel, a message changed on the way, and an envelope captured
and published again (seen already, or older than that) are dropped, and
the listener says so once per channel.
"""
from __future__ import annotations

import json
import time
from typing import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from pyfi.core.access import Actor, require
from pyfi.core.keys import KeyOwner, key_owner
from pyfi.core.network import namespace
from pyfi.db.engine import session_scope
from pyfi.db.models import Processor, Socket
from pyfi.enums import Right
from pyfi.messaging.pubsub import Message
from pyfi.messaging.pubsub.network import MAX_AGE, Envelope, opened, signed_bytes
from pyfi.messaging.signing import valid_signature

#: seconds a listener trusts what it read of a key and its processor's rooms
TTL = 5.0


def open_listening(session: Session, actor: Actor) -> str:
    """Check the actor may listen (READ); the network's channel namespace."""
    require(session, actor, Right.READ)
    return namespace(session)


class Verifier:
    """Turns what a subscriber received into the messages a worker really published (see the module docstring).

    An envelope is shown once: one sealed more than ``max_age`` seconds before or after this listener's clock
    is dropped, and so is one whose key and nonce it saw within the last ``2 * max_age`` seconds (an older one
    is dropped for its age, so that is all a listener remembers).
    """

    def __init__(self, db_url: str, namespace: str, on_ignored: Callable[[str, str], None] | None = None,
                 ttl: float = TTL, max_age: float = MAX_AGE) -> None:
        self.db_url, self.namespace, self.on_ignored, self.ttl = db_url, namespace, on_ignored, ttl
        self.max_age = max_age
        self._signers: dict[str, tuple[float, tuple[KeyOwner, frozenset[str]] | None]] = {}
        self._warned: set[str] = set()
        self._seen: dict[tuple[str, str], float] = {}  # (key, nonce) -> when it may be forgotten (monotonic)
        self._prune_at = time.monotonic() + max_age

    def messages(self, received: Message) -> list[Message]:
        """The messages of one envelope, or none when it is not a genuine one."""
        envelope = opened(received.data)
        if envelope is None:
            return self._ignore(received.channel, "it is not signed")
        signer = self._signer(envelope.key)
        if signer is None:
            return self._ignore(received.channel, "its key is no processor's")
        owner, rooms = signer
        if received.channel.rpartition(".")[0] not in rooms:
            return self._ignore(received.channel, f"it is signed by processor {owner.processor!r}, not this channel's")
        content = signed_bytes(self.namespace + received.channel, envelope.messages, envelope.time, envelope.nonce)
        if not valid_signature(owner.public_key, envelope.sig, content):
            return self._ignore(received.channel, "its signature does not match it")
        stale = self._replayed(envelope)
        if stale:
            return self._ignore(received.channel, stale)
        try:
            items = json.loads(envelope.messages)
        except ValueError:
            return self._ignore(received.channel, "its messages are not JSON")
        return [Message(received.pattern, received.channel, item) for item in items]

    def _replayed(self, envelope: Envelope) -> str | None:
        """Why a genuine envelope is not shown again (a replay); None the first time it is seen, while fresh."""
        if abs(time.time() - envelope.time) > self.max_age:
            return f"it was sealed more than {self.max_age:.0f} s from now (a replay, or a clock far off)"
        now = time.monotonic()
        if now >= self._prune_at:
            self._seen = {seen: until for seen, until in self._seen.items() if until > now}
            self._prune_at = now + self.max_age
        if (envelope.key, envelope.nonce) in self._seen:
            return "it was shown already (a replay)"
        self._seen[(envelope.key, envelope.nonce)] = now + 2 * self.max_age
        return None

    def _signer(self, key_id: str) -> tuple[KeyOwner, frozenset[str]] | None:
        cached = self._signers.get(key_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        with session_scope(self.db_url) as session:
            owner = key_owner(session, key_id)
            found = (owner, rooms_of(session, owner.processor_id)) if owner and owner.processor_id else None
        self._signers[key_id] = (time.monotonic() + self.ttl, found)
        return found

    def _ignore(self, channel: str, why: str) -> list[Message]:
        if channel not in self._warned and self.on_ignored is not None:
            self._warned.add(channel)
            self.on_ignored(channel, why)
        return []


def rooms_of(session: Session, processor_id: str) -> frozenset[str]:
    """``<queue>.<processor>`` of each socket of a processor: where its workers publish."""
    processor = session.scalar(select(Processor).where(Processor.id == processor_id)
                               .options(selectinload(Processor.sockets).selectinload(Socket.queue)))
    if processor is None:
        return frozenset()
    return frozenset(f"{s.queue.name}.{processor.name}" for s in processor.sockets)


def unsigned_warning(channel: str, why: str) -> str:
    """The line a listener shows (once per channel) for a message it drops."""
    return f"Warning: ignored a message on {channel}: {why} (only messages signed by a processor's worker are shown)"



class PendingFeed:
    """Calls recorded as pending since the last read, as ``pending`` task messages of their rooms.

    No worker has them yet, so no worker can publish them: ``pyfi listen``
    reads them from the database (READ, checked when it opened) every
    second and shows them next to what workers publish.
    """

    def __init__(self, db_url: str, name: str, channel: str) -> None:
        from pyfi.db.base import utcnow

        self.db_url, self.name, self.channel = db_url, name, channel
        self.since = utcnow()
        self.seen: set[str] = set()

    def read(self) -> list[Message]:
        """The new pending calls whose room matches ``name`` (when ``channel`` matches ``task``)."""
        from fnmatch import fnmatchcase

        from pyfi.db.models import Call
        from pyfi.enums import CallState
        from pyfi.messaging.pubsub import Channel, build_message, channel_name, pattern_for

        if not fnmatchcase(Channel.TASK.value, self.channel):
            return []
        query = (select(Call).options(selectinload(Call.socket).selectinload(Socket.queue),
                                      selectinload(Call.socket).selectinload(Socket.processor))
                 .where(Call.state == CallState.PENDING, Call.created >= self.since).order_by(Call.created))
        found = []
        with session_scope(self.db_url) as session:
            for call in session.scalars(query):
                room = f"{call.socket.queue.name}.{call.socket.processor.name}" if call.socket else None
                if room is None or call.id in self.seen or not fnmatchcase(room, self.name):
                    continue
                self.seen.add(call.id)
                module, _, task = call.name.rpartition(".")
                data = build_message(room, "pending", date=call.created.isoformat(sep=" ", timespec="microseconds"),
                                     module=module, task=task, call=call.id)
                found.append(Message(pattern_for(self.name, self.channel), channel_name(room), data))
        return found
