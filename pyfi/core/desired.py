"""Desired state of one object: find it, create it, or update it to match.

Network files (``pyfi compose``) and the Python client describe objects by
name plus the fields the author cares about. ``ensure`` makes the database
agree: a missing object is created, an existing one is updated only in the
fields given that differ, and anything else is left alone. Every step goes
through ``pyfi.core.objects`` so the rights checks are the CLI's.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pyfi.core import objects
from pyfi.core.access import Actor
from pyfi.core.kinds import MODULE_RE, kind
from pyfi.core.lookup import by_name
from pyfi.core.names import FUNCTION_RE, check_name
from pyfi.db import models as m
from pyfi.enums import PlugType, ProcessorStatus, QueueType, StrEnum, parse_enum
from pyfi.errors import InvalidInput, NotFound
from pyfi.masking import mask_url


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class Field:
    """One settable field of a kind, as a network file or the client names it."""

    name: str
    type: type = str
    required: bool = False
    enum: type[StrEnum] | None = None
    ref: str | None = None  # the kind this field names, e.g. "queue"
    minimum: int | None = None
    pattern: Any = None
    help: str = ""


SCHEMA: dict[str, dict[str, Field]] = {
    "queue": {f.name: f for f in (
        Field("type", enum=QueueType, help="direct, topic or fanout"),
        Field("description"),
    )},
    "processor": {f.name: f for f in (
        Field("module", required=True, pattern=MODULE_RE, help="a dotted Python module path, e.g. sample"),
        Field("gitrepo", required=True, help="the URL or path of the git repository"),
        Field("branch"),
        Field("commit"),
        Field("hostname"),
        Field("workers", int, minimum=1),
        Field("retries", int, minimum=0),
        Field("beat", bool),
        Field("requirements", help="extra pip requirements, comma separated"),
        Field("requested_status", enum=ProcessorStatus),
    )},
    "socket": {f.name: f for f in (
        Field("processor", required=True, ref="processor"),
        Field("queue", required=True, ref="queue"),
        Field("task", required=True, pattern=FUNCTION_RE, help="a function name of the processor's module"),
        Field("interval", int, minimum=1),
        Field("wait", bool),
    )},
    "plug": {f.name: f for f in (
        Field("source", required=True, ref="socket"),
        Field("target", required=True, ref="socket"),
        Field("queue", required=True, ref="queue"),
        Field("type", enum=PlugType, help="RESULT or ERROR"),
        Field("position", int, minimum=0),
    )},
}

REF_MODELS = {"queue": m.Queue, "processor": m.Processor, "socket": m.Socket}


@dataclass(frozen=True)
class Change:
    """What ``ensure`` did (or, in a dry run, would do) to one object."""

    kind: str
    name: str
    action: Action
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # name -> (old, new)
    obj: Any = None

    def describe(self) -> str:
        """``create socket greet: queue=q1, task=do_something`` and the like."""
        head = f"{self.action.value} {self.kind} {self.name}"
        if self.action == Action.CREATE:
            return head + (": " + ", ".join(f"{k}={_show(k, new)}" for k, (_, new) in self.fields.items()) if self.fields else "")
        if self.action == Action.UPDATE:
            return head + ": " + ", ".join(f"{k} {_show(k, old)} -> {_show(k, new)}" for k, (old, new) in self.fields.items())
        return head


def _show(name: str, value: Any) -> str:
    return str(mask_url(value) if name == "gitrepo" else value)


def coerce(kind_name: str, name: str, value: Any) -> Any:
    """``value`` checked against the schema: the right type, range and vocabulary."""
    spec = SCHEMA[kind_name].get(name)
    if spec is None:
        known = ", ".join(SCHEMA[kind_name])
        raise InvalidInput(f"unknown {kind_name} field {name!r}", f"use one of: {known}")
    if spec.ref is not None:
        value = getattr(value, "name", value)  # a client object stands for its name
    if spec.type is bool and not isinstance(value, bool):
        raise InvalidInput(f"{kind_name} field {name!r} must be true or false, got {value!r}", f"write {name}: true")
    if spec.type is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise InvalidInput(f"{kind_name} field {name!r} must be a whole number, got {value!r}", f"write {name}: 1")
    if spec.type is str and not isinstance(value, str):
        raise InvalidInput(f"{kind_name} field {name!r} must be a string, got {value!r}", "quote the value")
    if spec.minimum is not None and value < spec.minimum:
        raise InvalidInput(f"{kind_name} field {name!r} must be at least {spec.minimum}, got {value}",
                           f"use {spec.minimum} or more")
    if spec.enum is not None:
        return parse_enum(spec.enum, value, f"{kind_name} {name}")
    if spec.pattern is not None and not spec.pattern.match(value):
        raise InvalidInput(f"invalid {kind_name} {name} {value!r}", f"use {spec.help}")
    return value


def missing_required(kind_name: str, fields: dict[str, Any]) -> list[str]:
    return [n for n, f in SCHEMA[kind_name].items() if f.required and fields.get(n) is None]


def ensure(session: Session, actor: Actor, kind_name: str, name: str, fields: dict[str, Any]) -> Change:
    """Create ``name`` or bring the given ``fields`` of it up to date."""
    check_name(name, kind_name)
    wanted = {k: coerce(kind_name, k, v) for k, v in fields.items() if v is not None}
    the_kind = kind(kind_name)
    if session.scalar(select(the_kind.model.id).where(the_kind.model.name == name)) is None:
        return _create(session, actor, kind_name, name, wanted)
    obj = objects.get(session, actor, the_kind, name, None)
    diff = differences(session, kind_name, obj, wanted)
    if not diff:
        return Change(kind_name, name, Action.UNCHANGED, obj=obj)
    obj = objects.update(session, actor, the_kind, name, None, {k: wanted[k] for k in diff})
    session.expire(obj)  # foreign keys changed under loaded relationships: reload them on next use
    return Change(kind_name, name, Action.UPDATE, diff, obj)


def _create(session: Session, actor: Actor, kind_name: str, name: str, wanted: dict[str, Any]) -> Change:
    missing = missing_required(kind_name, wanted)
    if missing:
        raise InvalidInput(f"{kind_name} {name!r} does not exist and cannot be created without {', '.join(missing)}",
                           f"give {', '.join(missing)} to create it, or create it first with `pyfi add {kind_name}`")
    check_refs(session, kind_name, wanted)
    obj = objects.add(session, actor, kind(kind_name), {"name": name, **wanted})
    shown = {k: (None, _plain(v)) for k, v in wanted.items()}
    return Change(kind_name, name, Action.CREATE, shown, obj)


def check_refs(session: Session, kind_name: str, wanted: dict[str, Any]) -> None:
    """NotFound for the first field naming an object that does not exist."""
    for key, value in wanted.items():
        ref = SCHEMA[kind_name][key].ref
        if ref is not None:
            by_name(session, REF_MODELS[ref], value, ref)


def differences(session: Session, kind_name: str, obj: Any, wanted: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Field -> (current, wanted) for every given field whose value differs."""
    diff = {}
    for key, value in wanted.items():
        current = current_value(session, kind_name, obj, key, wanted)
        if _plain(current) != _plain(value):
            diff[key] = (_plain(current), _plain(value))
    if diff:
        check_refs(session, kind_name, {k: wanted[k] for k in diff})
    return diff


def current_value(session: Session, kind_name: str, obj: Any, key: str, wanted: dict[str, Any]) -> Any:
    if SCHEMA[kind_name][key].ref is not None:
        related = getattr(obj, key)
        return related.name if related is not None else None
    if kind_name == "socket" and key == "task":
        return _current_task(session, obj, wanted)
    return getattr(obj, key)


def _current_task(session: Session, socket: m.Socket, wanted: dict[str, Any]) -> str | None:
    """The socket's function name, or None when it belongs to another module.

    A socket's task row is ``<module>.<function>``; when its processor (or the
    processor's module) changed, the same function name must be re-bound.
    """
    processor_name = wanted.get("processor") or socket.processor.name
    processor = session.scalar(select(m.Processor).where(m.Processor.name == processor_name))
    if processor is None:
        raise NotFound(f"no processor named {processor_name!r}", "define it under processors:")
    if socket.task.module != processor.module:
        return f"{socket.task.module}.{socket.task.name}"
    return socket.task.name


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, StrEnum) else value
