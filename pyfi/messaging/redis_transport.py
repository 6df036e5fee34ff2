"""kombu's Redis transport, with the calls a killed worker held given back at once.

A Redis consumer keeps each message it has taken, and not yet acknowledged,
in one ``unacked`` hash that all consumers share. A worker that stops
cleanly puts its messages back; one killed with SIGKILL (the OOM killer, a
``kill -9``) cannot, and its messages wait for the visibility timeout (300 s)
before any other consumer restores them.

Here each consumer has a *holder* id, unique to the worker process (the
agent's run directory name for it, transport option ``pyfi_holder``). In
the pipelined commands kombu sends anyway (no extra round trip), it notes
each delivery tag it takes in its held set, ``pyfi.held.<holder>``, and in
``pyfi.holders`` (tag -> holder); whoever acknowledges or restores a tag
removes its entry there. The agent that sees one of its workers die
(:func:`give_back`) restores the tags of that worker's set that are still
its own: a tag restored by the visibility timeout and taken by another
worker since (tags survive redelivery) is left alone. The visibility
timeout stays the backstop for a node that died with its agent, and for a
worker started by hand. Every command used here is one kombu's
``global_keyprefix`` option prefixes.
"""
from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any

from kombu.transport import redis as _redis
from kombu.transport import virtual
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps, loads

from pyfi.messaging.app import HOLDER_OPTION, VISIBILITY_TIMEOUT

log = logging.getLogger("pyfi.messaging")

HOLDERS_KEY = "pyfi.holders"
HELD_FOR_MS = 2 * VISIBILITY_TIMEOUT * 1000  # a held set nobody gives back (its node died) goes after that


def held_key(holder: str) -> str:
    return f"pyfi.held.{holder}"


class QoS(_redis.QoS):
    """kombu's, noting each delivery tag with this consumer's holder id while it is unacknowledged."""

    def append(self, message: Any, delivery_tag: str) -> None:
        """Hold the message: kombu's index and hash entries (what restores read), and this holder's notes."""
        info = message.delivery_info
        record = dumps([message._raw, info["exchange"], info["routing_key"]])  # the form restore_by_tag reads
        with self.pipe_or_acquire() as pipe:
            pipe.zadd(self.unacked_index_key, {delivery_tag: time.time()})
            pipe.hset(self.unacked_key, delivery_tag, record)
            pipe.sadd(held_key(self.holder), delivery_tag)
            pipe.pexpire(held_key(self.holder), HELD_FOR_MS)
            pipe.hset(HOLDERS_KEY, delivery_tag, self.holder)
            pipe.execute()
        virtual.QoS.append(self, message, delivery_tag)  # what this channel holds, in memory

    def _remove_from_indices(self, delivery_tag: str, pipe: Any = None) -> Any:
        """Acknowledged, rejected or restored (by whichever consumer): held by no one (the same pipeline)."""
        pipe = super()._remove_from_indices(delivery_tag, pipe)
        return pipe.hdel(HOLDERS_KEY, delivery_tag).srem(held_key(self.holder), delivery_tag)

    @property
    def holder(self) -> str:
        options = self.channel.connection.client.transport_options
        return options.get(HOLDER_OPTION) or f"{socket.gethostname()}.{os.getpid()}"


class Channel(_redis.Channel):
    QoS = QoS


class Transport(_redis.Transport):
    Channel = Channel


def give_back(connection: Any, holder: str) -> int:
    """Put the messages the dead consumer ``holder`` still held back on their queues; how many.

    ``connection``: a kombu connection with this transport and the workers'
    transport options. Call it only once the process is gone: a live one
    would run them twice.
    """
    channel = connection.default_channel
    client, qos = channel.client, channel.qos
    tags = [bytes_to_str(tag) for tag in client.smembers(held_key(holder))]
    given = sum(_give_back_one(client, channel, qos, tag, holder) for tag in tags)
    client.delete(held_key(holder))
    if given:
        log.warning("gave back %d call(s) held by the killed worker %s", given, holder)
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
            channel._do_restore_message(message, exchange, routing_key, pipe, True)  # first in line, as kombu's reject
            given = True

    client.transaction(restore, qos.unacked_key, HOLDERS_KEY)
    return given
