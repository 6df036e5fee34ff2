"""kombu's Redis transport, with the calls a killed worker held given back at once.

A Redis consumer keeps each message it has taken, and not yet acknowledged,
in one ``unacked`` hash that all consumers share. A worker that stops
cleanly puts its messages back; one killed with SIGKILL (the OOM killer, a
``kill -9``) cannot, and its messages wait for the visibility timeout (300 s)
before any other consumer restores them.

Here each consumer also notes the delivery tags it holds in a set of its
own, ``pyfi.held.<host>.<pid>``, in the same pipelined commands kombu sends
anyway (no extra round trip). The agent that sees one of its workers die
(:func:`give_back`) restores exactly those messages, so the next worker
runs them within a second. The visibility timeout stays the backstop for a
node that died with its agent.
"""
from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any

from kombu import Connection
from kombu.transport import redis as _redis
from kombu.transport import virtual
from kombu.utils.json import dumps

log = logging.getLogger("pyfi.messaging")

HELD_KEY = "pyfi.held.{host}.{pid}"


def held_key(pid: int, host: str | None = None) -> str:
    """The set of delivery tags the consumer process ``pid`` on ``host`` (this machine) holds."""
    return HELD_KEY.format(host=host or socket.gethostname(), pid=pid)


class QoS(_redis.QoS):
    """kombu's, noting each delivery tag in this process's held set while it is unacknowledged."""

    _held: tuple[int, str] = (0, "")

    def append(self, message: Any, delivery_tag: str) -> None:
        """Hold the message: kombu's index and hash entries (what restores read), and the held set."""
        info = message.delivery_info
        record = dumps([message._raw, info["exchange"], info["routing_key"]])  # the form restore_by_tag reads
        with self.pipe_or_acquire() as pipe:
            pipe.zadd(self.unacked_index_key, {delivery_tag: time.time()})
            pipe.hset(self.unacked_key, delivery_tag, record)
            pipe.sadd(self.held_key, delivery_tag)
            pipe.execute()
        virtual.QoS.append(self, message, delivery_tag)  # what this channel holds, in memory

    def _remove_from_indices(self, delivery_tag: str, pipe: Any = None) -> Any:
        """Acknowledged, rejected or restored: no longer held (the same pipeline)."""
        return super()._remove_from_indices(delivery_tag, pipe).srem(self.held_key, delivery_tag)

    @property
    def held_key(self) -> str:
        pid = os.getpid()  # a key named before a fork would be the parent's
        if self._held[0] != pid:
            self._held = (pid, held_key(pid))
        return self._held[1]


class Channel(_redis.Channel):
    QoS = QoS


class Transport(_redis.Transport):
    Channel = Channel


def give_back(broker_url: str, pid: int, transport_options: dict[str, Any] | None = None) -> int:
    """Put the messages the dead consumer ``pid`` of this machine held back on their queues; how many.

    Call it only once the process is gone: a live one would run them twice.
    A message the visibility timeout restored already is skipped.
    """
    options = {"socket_connect_timeout": 2, "socket_timeout": 5, **(transport_options or {})}  # never hang an agent
    with Connection(broker_url, transport=Transport, transport_options=options) as conn:
        channel = conn.default_channel
        client = channel.client
        key = held_key(pid)
        tags = [tag.decode() if isinstance(tag, bytes) else tag for tag in client.smembers(key)]
        for tag in tags:
            channel.qos.restore_by_tag(tag, client=client, leftmost=True)
        client.delete(key)
    if tags:
        log.warning("gave back %d call(s) held by the killed worker %d", len(tags), pid)
    return len(tags)
