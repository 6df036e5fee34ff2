"""The data model: every object of a pyfi network, as typed SQLAlchemy 2 models.

The database is the single source of truth; agents and workers react to it.
Deleting a processor cascades to its sockets and their plugs; queues are
protected (core refuses to delete one in use, naming its users).
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pyfi.db.base import Base, Common, EnumText, new_id, utcnow
from pyfi.enums import (
    AgentStatus,
    CallState,
    EventName,
    PlugType,
    ProcessorStatus,
    QueueType,
    Strategy,
    WorkerStatus,
)

from pyfi.db.models_access import (  # noqa: E402,F401 - re-exported: every model is pyfi.db.models.X
    ApiToken,
    Installation,
    Privilege,
    Role,
    SigningKey,
    User,
    WorkerLogin,
    user_roles,
)

#: a call id is the broker's task id: pyfi sends UUIDs, but any Celery client may choose a longer one
CALL_ID_LENGTH = 255

network_nodes = Table(
    "network_nodes",
    Base.metadata,
    Column("network_id", ForeignKey("networks.id", ondelete="CASCADE"), primary_key=True),
    Column("node_id", ForeignKey("nodes.id", ondelete="CASCADE"), primary_key=True),
)

scheduler_nodes = Table(
    "scheduler_nodes",
    Base.metadata,
    Column("scheduler_id", ForeignKey("schedulers.id", ondelete="CASCADE"), primary_key=True),
    Column("node_id", ForeignKey("nodes.id", ondelete="CASCADE"), primary_key=True),
)


class Queue(Common, Base):
    __tablename__ = "queues"

    type: Mapped[QueueType] = mapped_column(EnumText(QueueType), default=QueueType.DIRECT)
    durable: Mapped[bool] = mapped_column(default=True)
    message_ttl: Mapped[int | None]
    expires: Mapped[int | None]
    description: Mapped[str | None] = mapped_column(Text)

    sockets: Mapped[list[Socket]] = relationship(back_populates="queue")
    plugs: Mapped[list[Plug]] = relationship(back_populates="queue")


class Processor(Common, Base):
    __tablename__ = "processors"

    module: Mapped[str] = mapped_column(String(200))
    hostname: Mapped[str | None] = mapped_column(String(200))
    workers: Mapped[int] = mapped_column(default=1)
    retries: Mapped[int] = mapped_column(default=0)
    gitrepo: Mapped[str] = mapped_column(Text)
    branch: Mapped[str | None] = mapped_column(String(200))
    commit: Mapped[str | None] = mapped_column(String(64))
    beat: Mapped[bool] = mapped_column(default=False)
    requirements: Mapped[str | None] = mapped_column(Text)
    requested_status: Mapped[ProcessorStatus] = mapped_column(EnumText(ProcessorStatus), default=ProcessorStatus.READY)
    status: Mapped[ProcessorStatus] = mapped_column(EnumText(ProcessorStatus), default=ProcessorStatus.READY)
    error: Mapped[str | None] = mapped_column(Text)
    #: set by `proc restart`: every agent restarts workers started before it
    restart_requested: Mapped[dt.datetime | None]

    sockets: Mapped[list[Socket]] = relationship(
        back_populates="processor", cascade="all, delete-orphan", passive_deletes=True
    )
    workers_running: Mapped[list[Worker]] = relationship(
        back_populates="processor", cascade="all, delete-orphan", passive_deletes=True
    )
    deployments: Mapped[list[Deployment]] = relationship(
        back_populates="processor", cascade="all, delete-orphan", passive_deletes=True
    )


class Task(Base):
    """A function of a processor module; sockets bind tasks to queues."""

    __tablename__ = "tasks"
    __table_args__ = (UniqueConstraint("module", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    module: Mapped[str] = mapped_column(String(200))
    code: Mapped[str | None] = mapped_column(Text)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    lastupdated: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    arguments: Mapped[list[Argument]] = relationship(
        back_populates="task", cascade="all, delete-orphan", passive_deletes=True, order_by="Argument.position"
    )

    @property
    def path(self) -> str:
        """The call name, ``<module>.<function>`` as in the original pyfi documentation."""
        return f"{self.module}.{self.name}"


class Argument(Base):
    __tablename__ = "arguments"
    __table_args__ = (UniqueConstraint("task_id", "position"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(default=0)
    kind: Mapped[str | None] = mapped_column(String(60))
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))

    task: Mapped[Task] = relationship(back_populates="arguments")


class Socket(Common, Base):
    __tablename__ = "sockets"

    processor_id: Mapped[str] = mapped_column(ForeignKey("processors.id", ondelete="CASCADE"), index=True)
    queue_id: Mapped[str] = mapped_column(ForeignKey("queues.id", ondelete="RESTRICT"), index=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="RESTRICT"))
    interval: Mapped[int | None]
    cron: Mapped[str | None] = mapped_column(String(120))
    wait: Mapped[bool] = mapped_column(default=False)

    processor: Mapped[Processor] = relationship(back_populates="sockets")
    queue: Mapped[Queue] = relationship(back_populates="sockets")
    task: Mapped[Task] = relationship()
    plugs_out: Mapped[list[Plug]] = relationship(
        foreign_keys="Plug.source_id", back_populates="source", cascade="all, delete-orphan", passive_deletes=True
    )
    plugs_in: Mapped[list[Plug]] = relationship(
        foreign_keys="Plug.target_id", back_populates="target", cascade="all, delete-orphan", passive_deletes=True
    )


class Plug(Common, Base):
    __tablename__ = "plugs"

    type: Mapped[PlugType] = mapped_column(EnumText(PlugType), default=PlugType.RESULT)
    queue_id: Mapped[str] = mapped_column(ForeignKey("queues.id", ondelete="RESTRICT"), index=True)
    source_id: Mapped[str] = mapped_column(ForeignKey("sockets.id", ondelete="CASCADE"), index=True)
    target_id: Mapped[str] = mapped_column(ForeignKey("sockets.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(default=0)

    queue: Mapped[Queue] = relationship(back_populates="plugs")
    source: Mapped[Socket] = relationship(foreign_keys=[source_id], back_populates="plugs_out")
    target: Mapped[Socket] = relationship(foreign_keys=[target_id], back_populates="plugs_in")


class Call(Base):
    """One invocation of a socket; ``id`` is the broker task id."""

    __tablename__ = "calls"
    __table_args__ = (Index("ix_calls_socket_started", "socket_id", "started"),
                      Index("ix_calls_lastupdated_id", "lastupdated", "id"))  # ls calls: its order and --after

    id: Mapped[str] = mapped_column(String(CALL_ID_LENGTH), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), index=True)
    owner: Mapped[str | None] = mapped_column(String(120))
    # indexed by ix_calls_socket_started
    socket_id: Mapped[str | None] = mapped_column(ForeignKey("sockets.id", ondelete="SET NULL"))
    plug_id: Mapped[str | None] = mapped_column(ForeignKey("plugs.id", ondelete="SET NULL"))
    state: Mapped[CallState] = mapped_column(EnumText(CallState), default=CallState.PENDING, index=True)
    parent: Mapped[str | None] = mapped_column(String(CALL_ID_LENGTH), index=True)
    taskparent: Mapped[str | None] = mapped_column(String(CALL_ID_LENGTH))
    tracking: Mapped[str | None] = mapped_column(String(CALL_ID_LENGTH), index=True)
    resultkey: Mapped[str | None] = mapped_column(String(120))
    error: Mapped[str | None] = mapped_column(Text)
    started: Mapped[dt.datetime | None] = mapped_column(index=True)
    finished: Mapped[dt.datetime | None]
    #: who sent it, as the worker that took it checked (pyfi.worker.gate): a user, or "processor (owner)"
    sender: Mapped[str | None] = mapped_column(String(200))
    #: pyfi task cancel: who cancelled it, when, and whether a running call is to be stopped
    cancelled_by: Mapped[str | None] = mapped_column(String(200))
    cancelled: Mapped[dt.datetime | None]
    terminate: Mapped[bool | None]
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    lastupdated: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)  # (ix_calls_lastupdated_id)

    socket: Mapped[Socket | None] = relationship()
    events: Mapped[list[Event]] = relationship(
        back_populates="call", cascade="all, delete-orphan", passive_deletes=True, order_by="Event.created"
    )


class Event(Base):
    __tablename__ = "events"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[EventName] = mapped_column(EnumText(EventName))
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    owner: Mapped[str | None] = mapped_column(String(120))
    note: Mapped[str | None] = mapped_column(Text)
    #: the worker process that recorded it ("<pid>@<host>"): a call run twice has the events of each run
    worker: Mapped[str | None] = mapped_column(String(200))
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    lastupdated: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    call: Mapped[Call] = relationship(back_populates="events")


class Node(Common, Base):
    __tablename__ = "nodes"

    hostname: Mapped[str | None] = mapped_column(String(200))
    cpus: Mapped[int | None]
    load: Mapped[float | None]
    memory: Mapped[int | None] = mapped_column(BigInteger)
    disk: Mapped[int | None] = mapped_column(BigInteger)
    #: `pyfi node cordon`: schedulers place nothing new here; `drain`: they move everything away
    cordoned: Mapped[bool] = mapped_column(default=False)
    draining: Mapped[bool] = mapped_column(default=False)

    agents: Mapped[list[Agent]] = relationship(back_populates="node", cascade="all, delete-orphan", passive_deletes=True)


class Agent(Common, Base):
    __tablename__ = "agents"

    node_id: Mapped[str] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"), index=True)
    hostname: Mapped[str | None] = mapped_column(String(200))
    pid: Mapped[int | None]
    port: Mapped[int | None]
    status: Mapped[AgentStatus] = mapped_column(EnumText(AgentStatus), default=AgentStatus.RUNNING)

    node: Mapped[Node] = relationship(back_populates="agents")
    workers: Mapped[list[Worker]] = relationship(back_populates="agent", cascade="all, delete-orphan", passive_deletes=True)


class Worker(Common, Base):
    __tablename__ = "workers"

    # None: started by hand (``pyfi worker start``); it keeps its row's lastupdated fresh itself
    agent_id: Mapped[str | None] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    processor_id: Mapped[str] = mapped_column(ForeignKey("processors.id", ondelete="CASCADE"), index=True)
    pid: Mapped[int | None]
    concurrency: Mapped[int] = mapped_column(default=1)
    commit: Mapped[str | None] = mapped_column(String(64))
    workdir: Mapped[str | None] = mapped_column(Text)
    status: Mapped[WorkerStatus] = mapped_column(EnumText(WorkerStatus), default=WorkerStatus.STARTING)

    agent: Mapped[Agent | None] = relationship(back_populates="workers")
    processor: Mapped[Processor] = relationship(back_populates="workers_running")


class Scheduler(Common, Base):
    __tablename__ = "schedulers"

    strategy: Mapped[Strategy] = mapped_column(EnumText(Strategy), default=Strategy.BALANCED)
    interval: Mapped[int] = mapped_column(default=5)
    enabled: Mapped[bool] = mapped_column(default=True)

    nodes: Mapped[list[Node]] = relationship(secondary=scheduler_nodes)


class Deployment(Common, Base):
    """Placement of a processor onto a node: ``cpus`` worker processes there.

    ``scheduler_id`` names the scheduler that placed it; a deployment added
    by hand has none, and a processor with one is placed by hand only.
    """

    __tablename__ = "deployments"

    processor_id: Mapped[str] = mapped_column(ForeignKey("processors.id", ondelete="CASCADE"), index=True)
    hostname: Mapped[str] = mapped_column(String(200))
    cpus: Mapped[int] = mapped_column(default=1)
    scheduler_id: Mapped[str | None] = mapped_column(ForeignKey("schedulers.id", ondelete="CASCADE"), index=True)

    processor: Mapped[Processor] = relationship(back_populates="deployments")


class Placement(Base):
    """A move a scheduler made: a processor's worker processes on a node, before and after, and why."""

    __tablename__ = "placements"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    scheduler: Mapped[str] = mapped_column(String(200))
    processor: Mapped[str] = mapped_column(String(200))
    node: Mapped[str] = mapped_column(String(200))
    before: Mapped[int] = mapped_column(default=0)
    after: Mapped[int] = mapped_column(default=0)
    reason: Mapped[str | None] = mapped_column(Text)


class SocketTick(Base):
    """The last tick a timed socket fired for (pyfi.scheduler.beat): the next holder of the beat goes on from it."""

    __tablename__ = "socket_ticks"

    socket_id: Mapped[str] = mapped_column(ForeignKey("sockets.id", ondelete="CASCADE"), primary_key=True)
    last_tick: Mapped[dt.datetime]


class Network(Common, Base):
    __tablename__ = "networks"

    description: Mapped[str | None] = mapped_column(Text)

    nodes: Mapped[list[Node]] = relationship(secondary=network_nodes)


class JoinArrival(Base):
    """An argument waiting at a join (a socket with ``wait``) for the rest of its flow.

    Kept in the database so pending joins survive a worker restart; the row
    set for one (tracking, socket) is consumed in the transaction that fires
    the join.
    """

    __tablename__ = "join_arrivals"
    __table_args__ = (UniqueConstraint("tracking", "socket_id", "position"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tracking: Mapped[str] = mapped_column(String(CALL_ID_LENGTH), index=True)
    socket_id: Mapped[str] = mapped_column(ForeignKey("sockets.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    value: Mapped[str | None] = mapped_column(Text)  # JSON
    call_id: Mapped[str | None] = mapped_column(String(CALL_ID_LENGTH))
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)


call_parents = Table(
    "call_parents",
    Base.metadata,
    # Every call whose result fed a call (a join has several). No foreign keys:
    # calls are recorded asynchronously and may land in any order.
    Column("call_id", String(CALL_ID_LENGTH), primary_key=True),
    Column("parent_id", String(CALL_ID_LENGTH), primary_key=True, index=True),
)
