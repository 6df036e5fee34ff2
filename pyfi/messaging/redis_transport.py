"""kombu's Redis transport, where no instant leaves a taken message unnoted, and a killed worker's calls come back at once.

A Redis consumer keeps each message it has taken, and not yet acknowledged,
in one ``unacked`` hash that all consumers share. kombu's consumer pops a
message with ``BRPOP`` and writes that hash in a second command: killed in
between, it took the message with it for good. Here a consumer takes a
message and notes it in one atomic step (:mod:`pyfi.messaging.redis_take`).

Each consumer has a *holder* id, unique to the worker process (the agent's
run directory name for it, transport option ``pyfi_holder``), noted with
each delivery tag it takes in ``pyfi.holders`` (tag -> holder); whoever
acknowledges or restores a tag removes the entry. A worker that stops
cleanly puts its messages back; one killed with SIGKILL (the OOM killer, a
``kill -9``) cannot, and the agent that sees it die (:func:`give_back`)
restores the tags still noted as that worker's: a tag the visibility
timeout (300 s) restored and another worker took since (tags survive
redelivery) is noted as the other's. The visibility timeout stays the
backstop for a node that died with its agent, and for a worker started by
hand. kombu's ``global_keyprefix`` option prefixes every command used here
but the take, the wait and one read, which are prefixed by hand.

When Redis goes away, Celery drops the worker's connection and makes a new
one. A channel here keeps the address it was made with (kombu's forgets it
with the dropped connection, and then fails to ack or restore anything),
and does not put back the calls its worker still runs: they finish, are
acknowledged and run once; those it holds and will not run are put back.
"""
from __future__ import annotations

import logging
import os
import socket
import time
from functools import cached_property
from queue import Empty
from time import monotonic
from typing import Any

import redis
from kombu.transport import redis as _redis
from kombu.transport import virtual
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps, loads

from pyfi.messaging.app import HOLDER_OPTION
from pyfi.messaging.redis_take import TAKE_SCRIPT, TAKE_SHA, WAIT_IN_TURN, is_noscript, take_command, wait_command

log = logging.getLogger("pyfi.messaging")

HOLDERS_KEY = "pyfi.holders"  # delivery tag -> the holder id of the worker that holds it, while one does


class QoS(_redis.QoS):
    """kombu's, noting each delivery tag with this consumer's holder id while it is unacknowledged."""

    def append(self, message: Any, delivery_tag: str) -> None:
        """Hold the message: noted in Redis already if the take script took it, here if it came another way."""
        if delivery_tag != self.channel._noted:
            self._note(message, delivery_tag)
        self.channel._noted = None
        virtual.QoS.append(self, message, delivery_tag)  # what this channel holds, in memory

    def _note(self, message: Any, delivery_tag: str) -> None:
        """kombu's index and hash entries (what restores read), and this holder's note."""
        info = message.delivery_info
        record = dumps([message._raw, info["exchange"], info["routing_key"]])  # the form restore_by_tag reads
        with self.pipe_or_acquire() as pipe:
            pipe.zadd(self.unacked_index_key, {delivery_tag: time.time()})
            pipe.hset(self.unacked_key, delivery_tag, record)
            pipe.hset(HOLDERS_KEY, delivery_tag, self.holder)
            pipe.execute()

    def _remove_from_indices(self, delivery_tag: str, pipe: Any = None) -> Any:
        """Acknowledged, rejected or restored (by whichever consumer): held by no one (the same pipeline)."""
        return super()._remove_from_indices(delivery_tag, pipe).hdel(HOLDERS_KEY, delivery_tag)

    def restore_unacked(self, client: Any = None) -> None:
        """Put back what this channel holds, as it closes; not when its connection was lost (see :func:`keep_held`)."""
        if not getattr(self.channel.connection, "keep_held", False):
            super().restore_unacked(client)

    @cached_property
    def holder(self) -> str:
        options = self.channel.connection.client.transport_options
        return options.get(HOLDER_OPTION) or _process_holder()


def _process_holder(made: dict[int, str] = {}) -> str:  # noqa: B006 - one per process, kept across reconnects
    return made.setdefault(os.getpid(), f"{socket.gethostname()}.{os.getpid()}.{time.time_ns()}")


class Channel(_redis.Channel):
    """kombu's, taking each message and noting it as held in one step (see :mod:`pyfi.messaging.redis_take`)."""

    QoS = QoS
    _take_next = True  # the next poll takes; False: it first waits for one of the queues to hold a message
    _take_sha: str | None = None  # the take script's, once this Redis has run it
    _turn = 0  # with several queues, the one the next wait watches
    _sent = "BRPOP"  # the command whose reply the pending poll reads
    _noted: str | None = None  # the delivery tag the take script noted, while it is being delivered
    _taking: list[str]  # the queue of each key the pending take looks in

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._transport = self.connection  # kombu forgets it when the channel closes (see _connparams)

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        """Where Redis is, even for a closed channel: the calls its worker still runs are acknowledged through it."""
        if self.connection is not None:
            return super()._connparams(asynchronous)
        self.connection = self._transport
        try:
            return super()._connparams(asynchronous)
        finally:
            self.connection = None

    def _brpop_start(self, timeout: float | None = None) -> None:
        queues = self._queue_cycle.consume(len(self.active_queues))
        if not queues:
            return
        command = self._take(queues) if self._take_next else self._wait(queues, timeout)
        self._sent = command[0]
        self._in_poll = self.client.connection
        self._brpop_sent_at = monotonic()
        self.client.connection.send_command(*command)

    def _take(self, queues: list[str]) -> list[Any]:
        self._taking = [queue for pri in self.priority_steps for queue in queues]
        keys = [self._q_for_pri(queue, pri) for pri in self.priority_steps for queue in queues]
        keys += [self.unacked_key, self.unacked_index_key, HOLDERS_KEY]
        return take_command(self._take_sha, [self.global_keyprefix + key for key in keys], self.qos.holder, time.time())

    def _wait(self, queues: list[str], timeout: float | None) -> list[Any]:
        """Watch one queue (its priority-0 list): all of the time if it is the only one, in turn with the others."""
        self._turn += 1
        queue = queues[self._turn % len(queues)]
        wait = (self.brpop_timeout if timeout is None else timeout) if len(queues) == 1 else WAIT_IN_TURN
        return wait_command(self.global_keyprefix + queue, wait or WAIT_IN_TURN)

    def _brpop_read(self, **options: Any) -> bool:
        try:
            reply = self._read_reply(**options)
            if self._sent == "BLMOVE" or not reply:
                self._take_next = self._sent == "BLMOVE"  # after a wait, take; after an empty take, wait
                raise Empty()
            self._take_next = True
            self._deliver_taken(self._taking[int(reply[0]) - 1], reply[1])
            return True
        finally:
            self._in_poll = None
            self._flush_brpop_reauth()

    def _read_reply(self, **options: Any) -> Any:
        try:
            reply = self.client.parse_response(self.client.connection, self._sent, **options)
        except self.connection_errors:
            self.client.connection.disconnect()  # the next poll reconnects
            raise
        except self.ResponseError as exc:
            if not is_noscript(exc):
                raise
            self._take_sha = None  # Redis restarted: send the script again (nothing was taken)
            return None
        if self._sent == "EVAL":
            self._take_sha = TAKE_SHA
        return reply

    def _deliver_taken(self, queue: str, item: bytes) -> None:
        payload = loads(bytes_to_str(item))
        self._queue_cycle.rotate(queue)
        self._noted = payload["properties"]["delivery_tag"]
        try:
            self.connection._deliver(payload, queue)
        finally:
            self._noted = None

    def _get(self, queue: str) -> Any:
        """One message of ``queue``, taken and noted in one step (``basic_get``)."""
        keys = [self._q_for_pri(queue, pri) for pri in self.priority_steps]
        keys += [self.unacked_key, self.unacked_index_key, HOLDERS_KEY]
        with self.conn_or_acquire() as client:
            take = redis.Redis(connection_pool=client.connection_pool).register_script(TAKE_SCRIPT)
            reply = take([self.global_keyprefix + key for key in keys], [self.qos.holder, repr(time.time())])
        if not reply:
            raise Empty()
        payload = loads(bytes_to_str(reply[1]))
        self._noted = payload["properties"]["delivery_tag"]  # (basic_get appends it next)
        return payload


class Transport(_redis.Transport):
    """kombu's, whose channels keep the address of their Redis after their connection is closed."""

    Channel = Channel

    @property
    def client(self) -> Any:
        return self.__dict__.get("_client")

    @client.setter
    def client(self, connection: Any) -> None:
        """kombu forgets it when it closes the connection; the channels still need it to ack and restore."""
        if connection is not None:
            self.__dict__["_client"] = connection


def keep_held(connection: Any) -> None:
    """``connection`` to Redis was lost: as its channels close they put nothing back, for their worker may still run it.

    What the worker still runs it acknowledges when it is done (the channel
    keeps Redis's address); what it does not, :func:`give_back_unrun` puts
    back once the worker is connected again.
    """
    transport = getattr(connection, "_transport", None)
    if isinstance(transport, Transport):
        transport.keep_held = True


def give_back_unrun(connection: Any, running: set[str]) -> int:
    """Put back what this process's consumer holds but does not run (delivery tags not in ``running``); how many.

    For a worker connected again after losing Redis: the calls it had taken
    and dropped with the old connection would wait for the visibility timeout.
    """
    if not isinstance(getattr(connection, "_transport", None), Transport):
        return 0
    channel = connection.default_channel
    given = restore_held(channel, channel.qos.holder, keep=running)
    if given:
        log.warning("connected to the broker again: put back %d call(s) this worker had taken and will not run", given)
    return given


def give_back(connection: Any, holder: str, name: str = "") -> int:
    """Put the messages the dead consumer ``holder`` still held back on their queues; how many.

    ``connection``: a kombu connection with this transport and the workers'
    transport options; ``name``: the worker's, for the log. Call it only
    once the process is gone: a live one would run them twice. They go to
    the front of their queues: they were taken before what waits there.
    """
    given = restore_held(connection.default_channel, holder)
    if given:
        log.warning("gave back %d call(s) held by the killed worker %s%s: they run next", given, name and f"{name} ",
                    holder)
    return given


def give_back_prefix(connection: Any, prefix: str) -> int:
    """:func:`give_back` for every holder whose id starts with ``prefix`` (the workers of a lost agent); how many."""
    channel = connection.default_channel
    holders = channel.client.hgetall(channel.global_keyprefix + HOLDERS_KEY)
    names = {bytes_to_str(held) for held in holders.values()}
    return sum(restore_held(channel, holder) for holder in sorted(names) if holder.startswith(prefix))


def restore_held(channel: Channel, holder: str, keep: frozenset[str] | set[str] = frozenset()) -> int:
    """Put back the messages noted as held by ``holder``, but those of the delivery tags in ``keep``; how many."""
    client, qos = channel.client, channel.qos
    holders = client.hgetall(channel.global_keyprefix + HOLDERS_KEY)  # (a command kombu's key prefixing skips)
    tags = [bytes_to_str(tag) for tag, held_by in holders.items() if bytes_to_str(held_by) == holder]
    return sum(_give_back_one(client, channel, qos, tag, holder) for tag in tags if tag not in keep)


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
