"""Where a call goes: broker queue names computed from queue and socket rows.

Every broker queue uses its own name as exchange and routing key, and the
sender declares it before publishing. That works the same on Redis,
RabbitMQ and kombu's in-process virtual transports (which keep bindings in
the memory of the process that declared them). Queue types are resolved
here, from the database, instead of by broker exchanges.

Each socket has a broker queue of its own, consumed only by its processor's
workers (on every node that runs it). Why not one per function: two
processors may both have ``mymod.shout`` on a queue, from different code
and different owners; a call to one must never run the other's code.

- ``direct``: the call goes to the socket's queue: load-balanced over the
  workers of its processor.
- ``fanout``: a copy to the queue of every socket on the queue, durably.
- ``topic``: like fanout, but only sockets whose name, read as an AMQP topic
  pattern (``*`` one word, ``#`` any words), matches the routing key.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from pyfi.enums import QueueType

PREFIX = "pyfi"
#: pyfi's headers of a call: its socket, the processor it is for (its signature is for that one: see
#: pyfi.messaging.signing), the plug that sent it and the call whose result it carries
SOCKET_HEADER, PROCESSOR_HEADER = "pyfi_socket", "pyfi_processor"
PLUG_HEADER, TASKPARENT_HEADER = "pyfi_plug", "pyfi_taskparent"


@dataclass(frozen=True)
class Route:
    broker_queue: str
    task_name: str
    socket_id: str
    socket_name: str
    processor_id: str

    def headers(self, plug: str | None = None, taskparent: str | None = None) -> dict[str, str]:
        """pyfi's headers of a call along this route (an absent one reads as None)."""
        headers = {SOCKET_HEADER: self.socket_id, PROCESSOR_HEADER: self.processor_id}
        if plug:
            headers[PLUG_HEADER] = plug
        if taskparent:
            headers[TASKPARENT_HEADER] = taskparent
        return headers


def broker_queue(socket: Any) -> str:
    """The broker queue a socket's workers consume: named by the socket's id, so a rename strands no call."""
    return f"{PREFIX}.socket.{socket.id}"


def routes_for(socket: Any, routing_key: str | None = None) -> list[Route]:
    """The broker queues a call sent to ``socket`` must be published to."""
    queue = socket.queue
    if queue.type == QueueType.DIRECT:
        return [socket_route(socket)]
    peers = sorted(queue.sockets, key=lambda s: s.name)
    if queue.type == QueueType.TOPIC:
        key = routing_key or socket.name
        peers = [s for s in peers if topic_matches(s.name, key)]
    return [socket_route(s) for s in peers]


def socket_route(socket: Any) -> Route:
    """The route to ``socket`` itself, whatever its queue's type (a timed socket fires only itself)."""
    return Route(broker_queue(socket), socket.task.path, socket.id, socket.name, socket.processor_id)


def topic_matches(pattern: str, key: str) -> bool:
    """AMQP topic matching: words split on dots, ``*`` = one word, ``#`` = zero or more."""
    return _match(pattern.split("."), key.split("."))


def _match(pattern: list[str], words: list[str]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_match(rest, words[i:]) for i in range(len(words) + 1))
    if not words:
        return False
    return head in ("*", words[0]) and _match(rest, words[1:])


def kombu_queue(name: str) -> Any:
    """A durable queue bound to a direct exchange of the same name."""
    from kombu import Exchange, Queue

    return Queue(name, Exchange(name, type="direct", durable=True), routing_key=name, durable=True)


def kombu_queues(names: Iterable[str]) -> list[Any]:
    return [kombu_queue(n) for n in sorted(set(names))]
