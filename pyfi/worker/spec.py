"""What one worker runs, read once from the database at start.

The agent restarts a worker when the code or the socket set changes, so a
snapshot is enough; only plugs are re-read while running (see ``plugs``).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from pyfi.core.network import namespace
from pyfi.db.models import Processor, Socket
from pyfi.errors import NotFound
from pyfi.messaging.routing import broker_queue


@dataclass(frozen=True)
class SocketSpec:
    id: str
    name: str
    queue: str
    task_name: str  # <module>.<function>
    function: str
    broker_queue: str

    @property
    def room(self) -> str:
        """The pub/sub room, ``<queue>.<processor>`` (set by WorkerSpec)."""
        raise AttributeError("use WorkerSpec.room_for")


@dataclass(frozen=True)
class WorkerSpec:
    processor_id: str
    processor: str
    module: str
    concurrency: int
    retries: int
    owner: str | None
    sockets: tuple[SocketSpec, ...]
    namespace: str = ""  # the network's pub/sub channel prefix (pyfi.core.network)

    def room_for(self, socket: SocketSpec) -> str:
        return f"{socket.queue}.{self.processor}"

    @property
    def broker_queues(self) -> list[str]:
        return sorted({s.broker_queue for s in self.sockets})

    def keeping(self, sockets: list[SocketSpec]) -> "WorkerSpec":
        """This spec with only ``sockets`` (the others cannot run: their functions are missing)."""
        return replace(self, sockets=tuple(sockets))

    def sockets_for_task(self, task_name: str) -> list[SocketSpec]:
        return [s for s in self.sockets if s.task_name == task_name]

    @property
    def signature(self) -> tuple:
        """Changes when a restart is needed (socket set, queues, concurrency)."""
        sockets = tuple(sorted((s.name, s.broker_queue, s.task_name) for s in self.sockets))
        return (self.module, self.concurrency, self.retries, sockets)

    @property
    def digest(self) -> str:
        """The signature, short: a worker carries it so that a restarted agent knows whether it is current."""
        return hashlib.sha1(repr(self.signature).encode()).hexdigest()[:16]


def load_spec(session: Session, processor_name: str) -> WorkerSpec:
    processor = session.scalar(
        select(Processor)
        .where(Processor.name == processor_name)
        .options(selectinload(Processor.sockets).selectinload(Socket.queue),
                 selectinload(Processor.sockets).selectinload(Socket.task))
    )
    if processor is None:
        raise NotFound(f"no processor named {processor_name!r}", "list them with `pyfi ls processors`")
    return replace(spec_of(processor), namespace=namespace(session))


def spec_of(processor: Processor) -> WorkerSpec:
    sockets = tuple(
        SocketSpec(s.id, s.name, s.queue.name, s.task.path, s.task.name, broker_queue(s))
        for s in sorted(processor.sockets, key=lambda s: s.name)
    )
    return WorkerSpec(processor.id, processor.name, processor.module, processor.workers, processor.retries,
                      processor.owner, sockets)
