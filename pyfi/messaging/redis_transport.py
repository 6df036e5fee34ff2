"""kombu's Redis transport, with the calls a killed worker held given back at once.

A Redis consumer keeps each message it has taken, and not yet acknowledged,
in one ``unacked`` hash that all consumers share. A worker that stops
cleanly puts its messages back; one killed with SIGKILL (the OOM killer, a
``kill -9``) cannot, and its messages wait for the visibility timeout (300 s)
before any other consumer restores them.

Here each consumer has a *holder* id, unique to the worker process (the
agent's run directory name for it, transport option ``pyfi_holder``). In
the pipelined commands kombu sends anyway (no extra round trip), it notes
each delivery tag it takes in ``pyfi.holders`` (tag -> holder); whoever
acknowledges or restores a tag removes the entry. The agent that sees one
of its workers die (:func:`give_back`) restores the tags still noted as
that worker's: a tag the visibility timeout restored and another worker
took since (tags survive redelivery) is noted as the other's. The
visibility timeout stays the backstop for a node that died with its agent,
and for a worker started by hand. kombu's ``global_keyprefix`` option
prefixes every command used here but one, which is prefixed by hand.
"""
from __future__ import annotations

import logging
import os
import socket
import time
from functools import cached_property
from typing import Any

from kombu.transport import redis as _redis
from kombu.transport import virtual
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps, loads

from pyfi.messaging.app import HOLDER_OPTION

log = logging.getLogger("pyfi.messaging")

HOLDERS_KEY = "pyfi.holders"  # delivery tag -> the holder id of the worker that holds it, while one does


class QoS(_redis.QoS):
    """kombu's, noting each delivery tag with this consumer's holder id while it is unacknowledged."""

    def append(self, message: Any, delivery_tag: str) -> None:
        """Hold the message: kombu's index and hash entries (what restores read), and this holder's notes."""
        info = message.delivery_info
        record = dumps([message._raw, info["exchange"], info["routing_key"]])  # the form restore_by_tag reads
        with self.pipe_or_acquire() as pipe:
            pipe.zadd(self.unacked_index_key, {delivery_tag: time.time()})
            pipe.hset(self.unacked_key, delivery_tag, record)
            pipe.hset(HOLDERS_KEY, delivery_tag, self.holder)
            pipe.execute()
        virtual.QoS.append(self, message, delivery_tag)  # what this channel holds, in memory

    def _remove_from_indices(self, delivery_tag: str, pipe: Any = None) -> Any:
        """Acknowledged, rejected or restored (by whichever consumer): held by no one (the same pipeline)."""
        return super()._remove_from_indices(delivery_tag, pipe).hdel(HOLDERS_KEY, delivery_tag)

    @cached_property
    def holder(self) -> str:
        options = self.channel.connection.client.transport_options
        return options.get(HOLDER_OPTION) or f"{socket.gethostname()}.{os.getpid()}.{time.time_ns()}"


class Channel(_redis.Channel):
    QoS = QoS


class Transport(_redis.Transport):
    Channel = Channel


def give_back(connection: Any, holder: str, name: str = "") -> int:
    """Put the messages the dead consumer ``holder`` still held back on their queues; how many.

    ``connection``: a kombu connection with this transport and the workers'
    transport options; ``name``: the worker's, for the log. Call it only
    once the process is gone: a live one would run them twice. They go to
    the front of their queues: they were taken before what waits there.
    """
    channel = connection.default_channel
    client, qos = channel.client, channel.qos
    holders = client.hgetall(channel.global_keyprefix + HOLDERS_KEY)  # (a command kombu's key prefixing skips)
    tags = [bytes_to_str(tag) for tag, held_by in holders.items() if bytes_to_str(held_by) == holder]
    given = sum(_give_back_one(client, channel, qos, tag, holder) for tag in tags)
    if given:
        log.warning("gave back %d call(s) held by the killed worker %s%s: they run next", given, name and f"{name} ",
                    holder)
    return given


def _give_back_one(client: Any, channel: Any, qos: QoS, tag: str, holder: str) -> bool:
    given = False

    def restore(pipe: Any) -> None:  # run again by redis-py if a watched key changed meanwhile
        nonlocal given
        given = False
        record = pipe.hget(qos.unacked_key, tag)
        still_ours = bytes_to_str(pipe.hget(HOLDERS_KEY, tag) or b"") == holder
        pipe.multi()
        if record and still_ours:
            pipe.zrem(qos.unacked_index_key, tag).hdel(qos.unacked_key, tag).hdel(HOLDERS_KEY, tag)
            message, exchange, routing_key = loads(bytes_to_str(record))
            channel._do_restore_message(message, exchange, routing_key, pipe, False)  # at the end consumers pop: next
            given = True

    client.transaction(restore, qos.unacked_key, HOLDERS_KEY)
    return given
