"""Closed vocabularies of pyfi: statuses, types and rights as ``str`` Enums.

They are stored in the database as their string values, so the values must
never change once released; add new members instead.
"""
from __future__ import annotations

import difflib
import enum


class StrEnum(str, enum.Enum):
    """A str Enum whose ``str()`` is its value (as in Python 3.11's StrEnum)."""

    def __str__(self) -> str:
        return self.value

    @classmethod
    def values(cls) -> list[str]:
        return [m.value for m in cls]


class QueueType(StrEnum):
    DIRECT = "direct"
    TOPIC = "topic"
    FANOUT = "fanout"


class PlugType(StrEnum):
    RESULT = "RESULT"
    ERROR = "ERROR"


class ProcessorStatus(StrEnum):
    """What a processor is doing (``status``) or should do (``requested_status``)."""

    READY = "ready"
    STARTING = "starting"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    REMOVED = "removed"
    ERROR = "error"
    LOST = "lost"  # only ever shown, never stored: the agents that ran it stopped heartbeating


class CallState(StrEnum):
    PENDING = "pending"  # sent, recorded by its sender, not yet taken by a worker
    RECEIVED = "received"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    RETRY = "retry"
    REVOKED = "revoked"
    REFUSED = "refused"  # its worker would not run it: unsigned, a sender without RUN_TASK (pyfi.worker.gate)
    CANCELLED = "cancelled"  # pyfi task cancel: it never runs (or was asked to stop); no worker record changes it


class EventName(StrEnum):
    RECEIVED = "received"
    PRERUN = "prerun"
    POSTRUN = "postrun"
    FAILURE = "failure"
    RETRY = "retry"
    REVOKED = "revoked"
    REFUSED = "refused"
    CANCELLED = "cancelled"  # a worker met a cancelled call and dropped it (or stopped it: --terminate)


class AgentStatus(StrEnum):
    RUNNING = "running"
    MONITORING = "monitoring"  # agent start -q: heartbeats, runs no processor
    STOPPED = "stopped"
    LOST = "lost"


class WorkerStatus(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    CRASHED = "crashed"
    HUNG = "hung"  # holds calls that no pool process takes: its agent restarts it (pyfi.agent.stalls)
    LOST = "lost"  # shown only: a hand-started worker's row that it stopped refreshing (pyfi.worker.presence)


class Strategy(StrEnum):
    BALANCED = "BALANCED"
    EFFICIENT = "EFFICIENT"


class Right(StrEnum):
    """The rights list of the original pyfi documentation (with its missing comma fixed)."""

    ALL = "ALL"
    CREATE = "CREATE"
    READ = "READ"
    UPDATE = "UPDATE"
    DELETE = "DELETE"
    DB_DROP = "DB_DROP"
    DB_INIT = "DB_INIT"
    START_AGENT = "START_AGENT"
    RUN_TASK = "RUN_TASK"
    CANCEL_TASK = "CANCEL_TASK"
    START_PROCESSOR = "START_PROCESSOR"
    STOP_PROCESSOR = "STOP_PROCESSOR"
    PAUSE_PROCESSOR = "PAUSE_PROCESSOR"
    RESUME_PROCESSOR = "RESUME_PROCESSOR"
    LOCK_PROCESSOR = "LOCK_PROCESSOR"
    UNLOCK_PROCESSOR = "UNLOCK_PROCESSOR"
    VIEW_PROCESSOR = "VIEW_PROCESSOR"
    VIEW_PROCESSOR_CONFIG = "VIEW_PROCESSOR_CONFIG"
    VIEW_PROCESSOR_CODE = "VIEW_PROCESSOR_CODE"
    EDIT_PROCESSOR_CONFIG = "EDIT_PROCESSOR_CONFIG"
    EDIT_PROCESSOR_CODE = "EDIT_PROCESSOR_CODE"
    LS_PROCESSORS = "LS_PROCESSORS"
    LS_USERS = "LS_USERS"
    LS_USER = "LS_USER"
    LS_PLUGS = "LS_PLUGS"
    LS_SOCKETS = "LS_SOCKETS"
    LS_QUEUES = "LS_QUEUES"
    LS_AGENTS = "LS_AGENTS"
    LS_NODES = "LS_NODES"
    LS_SCHEDULERS = "LS_SCHEDULERS"
    LS_WORKERS = "LS_WORKERS"
    ADD_PROCESSOR = "ADD_PROCESSOR"
    ADD_AGENT = "ADD_AGENT"
    ADD_NODE = "ADD_NODE"
    ADD_PLUG = "ADD_PLUG"
    ADD_PRIVILEGE = "ADD_PRIVILEGE"
    ADD_QUEUE = "ADD_QUEUE"
    ADD_ROLE = "ADD_ROLE"
    ADD_SCHEDULER = "ADD_SCHEDULER"
    ADD_SOCKET = "ADD_SOCKET"
    ADD_USER = "ADD_USER"
    UPDATE_PROCESSOR = "UPDATE_PROCESSOR"
    UPDATE_AGENT = "UPDATE_AGENT"
    UPDATE_NODE = "UPDATE_NODE"
    UPDATE_PLUG = "UPDATE_PLUG"
    UPDATE_PRIVILEGE = "UPDATE_PRIVILEGE"
    UPDATE_QUEUE = "UPDATE_QUEUE"
    UPDATE_ROLE = "UPDATE_ROLE"
    UPDATE_SCHEDULER = "UPDATE_SCHEDULER"
    UPDATE_SOCKET = "UPDATE_SOCKET"
    UPDATE_USER = "UPDATE_USER"
    DELETE_PROCESSOR = "DELETE_PROCESSOR"
    DELETE_AGENT = "DELETE_AGENT"
    DELETE_NODE = "DELETE_NODE"
    DELETE_PLUG = "DELETE_PLUG"
    DELETE_PRIVILEGE = "DELETE_PRIVILEGE"
    DELETE_QUEUE = "DELETE_QUEUE"
    DELETE_ROLE = "DELETE_ROLE"
    DELETE_SCHEDULER = "DELETE_SCHEDULER"
    DELETE_SOCKET = "DELETE_SOCKET"
    DELETE_USER = "DELETE_USER"
    READ_PROCESSOR = "READ_PROCESSOR"
    READ_AGENT = "READ_AGENT"
    READ_NODE = "READ_NODE"
    READ_PLUG = "READ_PLUG"
    READ_PRIVILEGE = "READ_PRIVILEGE"
    READ_QUEUE = "READ_QUEUE"
    READ_ROLE = "READ_ROLE"
    READ_SCHEDULER = "READ_SCHEDULER"
    READ_SOCKET = "READ_SOCKET"
    READ_USER = "READ_USER"


def parse_enum(enum_cls: type[StrEnum], value: str, what: str) -> StrEnum:
    """Return the member of ``enum_cls`` named by ``value`` (case-insensitive).

    Raises InvalidInput listing the close matches, so a typo is easy to fix.
    """
    from pyfi.errors import InvalidInput

    for member in enum_cls:
        if value.lower() in (member.value.lower(), member.name.lower()):
            return member
    close = difflib.get_close_matches(value.upper(), [m.value.upper() for m in enum_cls], n=3)
    hint = f"did you mean {', '.join(close)}?" if close else f"choose one of {', '.join(enum_cls.values())}"
    raise InvalidInput(f"unknown {what} {value!r}", hint)
