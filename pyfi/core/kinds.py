"""The registry of object kinds managed by add/update/delete/ls.

Each kind names its model, the rights its operations need, and four small
hooks: ``check`` applies the actor's site policy to the fields (the git
allow-list for processors), ``prepare`` turns user-facing fields (names of
related objects, enum strings) into column values, ``authorize`` checks the
actor's right on the related objects the fields name (a socket's processor,
a plug's source socket), ``guard_delete`` refuses a delete that would
break something, and ``notes`` says what the user should know about the
object just added or changed (a timed socket whose processor has no beat). Users, roles and privileges
live in ``pyfi.core.users`` because they have more to do (password hashes,
grants, database roles).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from pyfi.core.access import Actor, require_owner
from pyfi.core.lookup import by_name
from pyfi.core.names import check_function_name
from pyfi.core.requirements import check_requirements
from pyfi.core.trust import check_module_name, check_repo
from pyfi.db import models as m
from pyfi.enums import PlugType, ProcessorStatus, QueueType, Right, Strategy, parse_enum
from pyfi.errors import InUse, InvalidInput

Fields = dict[str, Any]
MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def _keep(_session: Session, fields: Fields, _obj: Any = None) -> Fields:
    return fields


def _no_check(_actor: Actor, _fields: Fields) -> None:
    return None


def _no_guard(_session: Session, _obj: Any) -> None:
    return None


def _no_authorize(_session: Session, _actor: Actor, _fields: Fields, _obj: Any = None) -> None:
    return None


def _no_notes(_session: Session, _obj: Any) -> list[str]:
    return []


@dataclass(frozen=True)
class Kind:
    name: str
    plural: str
    model: type
    add: Right
    update: Right
    delete: Right
    ls: Right
    read: Right
    prepare: Callable[..., Fields] = _keep
    check: Callable[[Actor, Fields], None] = _no_check
    guard_delete: Callable[[Session, Any], None] = _no_guard
    authorize: Callable[..., None] = _no_authorize
    notes: Callable[[Session, Any], list[str]] = _no_notes
    columns: tuple[str, ...] = field(default=())


def _enum_field(fields: Fields, key: str, enum_cls: type, what: str) -> None:
    if fields.get(key) is not None:
        fields[key] = parse_enum(enum_cls, str(fields[key]), what)


def _positive(fields: Fields, key: str, minimum: int) -> None:
    value = fields.get(key)
    if value is not None and value < minimum:
        raise InvalidInput(f"--{key} must be at least {minimum}, got {value}", f"pass --{key} {minimum} or more")


def prepare_queue(session: Session, fields: Fields, obj: Any = None) -> Fields:
    _enum_field(fields, "type", QueueType, "queue type")
    return fields


#: what a user may ask a processor to be; the others (starting, error) only agents report
REQUESTABLE = (ProcessorStatus.READY, ProcessorStatus.RUNNING, ProcessorStatus.PAUSED,
               ProcessorStatus.STOPPED, ProcessorStatus.REMOVED)


def prepare_processor(session: Session, fields: Fields, obj: Any = None) -> Fields:
    _enum_field(fields, "requested_status", ProcessorStatus, "requested status")
    if fields.get("requested_status") not in (None, *REQUESTABLE):
        choices = ", ".join(s.value for s in REQUESTABLE)
        raise InvalidInput(f"a processor cannot be requested to be {fields['requested_status'].value!r}",
                           f"choose one of {choices}")
    _positive(fields, "workers", 1)
    _positive(fields, "retries", 0)
    module = fields.get("module")
    if module is not None and not MODULE_RE.match(module):
        raise InvalidInput(f"invalid module path {module!r}", "use a dotted Python module path, e.g. pkg.sample")
    if module is not None:
        check_module_name(module)
    if fields.get("gitrepo") is not None and not str(fields["gitrepo"]).strip():
        raise InvalidInput("empty git repository URI", "pass -g/--gitrepo URL or path of a git repository")
    check_requirements(fields.get("requirements"))
    return fields


def check_processor(actor: Actor, fields: Fields) -> None:
    """Refuse text holding a control or invisible character (it would reach terminals and logs as it is), and a git
    repository outside the administrator's allow-list."""
    from pyfi.core.names import forbidden_character

    for key, option in (("gitrepo", "-g/--gitrepo"), ("hostname", "-h/--hostname"), ("branch", "-br/--branch"),
                        ("requirements", "--requirements")):
        value = fields.get(key)
        text = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value or "")
        bad = forbidden_character(text)
        if bad is not None:
            raise InvalidInput(f"invalid {option} {ascii(text)}: it holds the control or invisible character "
                               f"{ascii(bad)[1:-1]}", "use printable characters only: no newline, tab, escape or "
                               "other control character")
    if fields.get("gitrepo") is not None and str(fields["gitrepo"]).strip():
        check_repo(str(fields["gitrepo"]), actor.git_allow)


def prepare_socket(session: Session, fields: Fields, obj: Any = None) -> Fields:
    if fields.get("processor") is not None:
        fields["processor_id"] = by_name(session, m.Processor, fields.pop("processor"), "processor").id
    fields.pop("processor", None)
    if fields.get("queue") is not None:
        fields["queue_id"] = by_name(session, m.Queue, fields.pop("queue"), "queue").id
    fields.pop("queue", None)
    _positive(fields, "interval", 1)
    check_schedule(fields, obj)
    function = fields.pop("task", None)
    if function is not None:
        processor_id = fields.get("processor_id") or (obj.processor_id if obj else None)
        fields["task_id"] = task_for(session, processor_id, function).id
    return fields


def check_schedule(fields: Fields, obj: Any = None) -> None:
    """A socket fires every ``interval`` seconds or on a ``cron`` schedule: one replaces the other, ``cron=""`` clears both."""
    if fields.get("interval") and fields.get("cron"):
        raise InvalidInput("a socket fires every -i/--interval seconds or on a --cron schedule, not both",
                           "give one of them")
    if fields.get("cron") is not None:
        if fields["cron"] == "":
            fields["cron"] = fields["interval"] = None
            return
        from croniter import croniter

        if not croniter.is_valid(fields["cron"]):
            raise InvalidInput(f"invalid cron expression {fields['cron']!r}",
                               'give five fields: minute hour day-of-month month day-of-week, e.g. "*/5 * * * *"')
    if obj is not None and fields.get("cron"):
        fields["interval"] = None
    elif obj is not None and fields.get("interval"):
        fields["cron"] = None


def socket_notes(session: Session, socket: Any) -> list[str]:
    """What the user should know after adding or changing a socket: a schedule that will not fire."""
    processor = socket.processor or session.get(m.Processor, socket.processor_id)
    if (socket.interval or socket.cron) and not processor.beat:
        return [f"processor {processor.name!r} has no -b/--beat: socket {socket.name!r}'s schedule does not fire until "
                f"`pyfi update processor -n {processor.name} --beat`"]
    return []


def task_for(session: Session, processor_id: str | None, function: str) -> m.Task:
    """Find or create the task row for ``function`` of the processor's module."""
    check_function_name(function)
    if processor_id is None:
        raise InvalidInput("a socket needs a processor", "pass -pn/--procname NAME")
    module = session.get(m.Processor, processor_id).module
    task = session.scalar(select(m.Task).where(m.Task.module == module, m.Task.name == function))
    if task is None:
        task = m.Task(module=module, name=function)
        session.add(task)
        session.flush()
    return task


def authorize_socket(session: Session, actor: Actor, fields: Fields, obj: Any = None) -> None:
    """Binding a socket to a processor needs the right on that processor: its owner's, or UPDATE."""
    processor_id = fields.get("processor_id")
    if processor_id is not None and (obj is None or processor_id != obj.processor_id):
        processor = session.get(m.Processor, processor_id)
        require_owner(session, actor, processor, "processor", Right.UPDATE, doing="binding a socket to")


def authorize_plug(session: Session, actor: Actor, fields: Fields, obj: Any = None) -> None:
    """A plug sends a socket's results on: that needs the right on the source socket (its owner's, or UPDATE)."""
    source_id = fields.get("source_id")
    if source_id is not None and (obj is None or source_id != obj.source_id):
        source = session.get(m.Socket, source_id)
        require_owner(session, actor, source, "socket", Right.UPDATE, doing="plugging into the results of")


def prepare_plug(session: Session, fields: Fields, obj: Any = None) -> Fields:
    _enum_field(fields, "type", PlugType, "plug type")
    _positive(fields, "position", 0)
    for key, model, what in (("queue", m.Queue, "queue"), ("source", m.Socket, "socket"), ("target", m.Socket, "socket")):
        value = fields.pop(key, None)
        if value is not None:
            fields[f"{key}_id"] = by_name(session, model, value, what).id
    source = fields.get("source_id") or (obj.source_id if obj else None)
    target = fields.get("target_id") or (obj.target_id if obj else None)
    if source is not None and source == target:
        raise InvalidInput("a plug cannot connect a socket to itself", "choose a different -t/--target socket")
    return fields


def prepare_agent(session: Session, fields: Fields, obj: Any = None) -> Fields:
    node = fields.pop("node", None)
    if node is not None:
        fields["node_id"] = by_name(session, m.Node, node, "node").id
    return fields


def prepare_worker(session: Session, fields: Fields, obj: Any = None) -> Fields:
    for key, model in (("agent", m.Agent), ("processor", m.Processor)):
        value = fields.pop(key, None)
        if value is not None:
            fields[f"{key}_id"] = by_name(session, model, value, key).id
    return fields


def prepare_scheduler(session: Session, fields: Fields, obj: Any = None) -> Fields:
    _enum_field(fields, "strategy", Strategy, "strategy")
    _positive(fields, "interval", 1)
    return fields


def prepare_deployment(session: Session, fields: Fields, obj: Any = None) -> Fields:
    processor = fields.pop("processor", None)
    if processor is not None:
        fields["processor_id"] = by_name(session, m.Processor, processor, "processor").id
    _positive(fields, "cpus", 1)
    return fields


def guard_queue(session: Session, queue: m.Queue) -> None:
    users = sorted([f"socket {s.name}" for s in queue.sockets] + [f"plug {p.name}" for p in queue.plugs])
    if users:
        raise InUse(f"queue {queue.name!r} is in use by {', '.join(users)}", "delete or re-point those first")


def _kind(name: str, plural: str, model: type, suffix: str | None, **hooks: Any) -> Kind:
    """Kinds with rights of their own in the original pyfi documentation (ADD_X, ...) use them; others use
    CREATE/UPDATE/DELETE/READ."""
    if suffix is None:
        return Kind(name, plural, model, Right.CREATE, Right.UPDATE, Right.DELETE, Right.READ, Right.READ, **hooks)
    ls_right = Right[f"LS_{suffix}S"] if f"LS_{suffix}S" in Right.__members__ else Right.READ
    return Kind(name, plural, model, Right[f"ADD_{suffix}"], Right[f"UPDATE_{suffix}"],
                Right[f"DELETE_{suffix}"], ls_right, Right[f"READ_{suffix}"], **hooks)


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        _kind("queue", "queues", m.Queue, "QUEUE", prepare=prepare_queue, guard_delete=guard_queue),
        _kind("processor", "processors", m.Processor, "PROCESSOR", prepare=prepare_processor, check=check_processor),
        _kind("socket", "sockets", m.Socket, "SOCKET", prepare=prepare_socket, authorize=authorize_socket,
              notes=socket_notes),
        _kind("plug", "plugs", m.Plug, "PLUG", prepare=prepare_plug, authorize=authorize_plug),
        _kind("node", "nodes", m.Node, "NODE"),
        _kind("agent", "agents", m.Agent, "AGENT", prepare=prepare_agent),
        _kind("worker", "workers", m.Worker, None, prepare=prepare_worker),
        _kind("scheduler", "schedulers", m.Scheduler, "SCHEDULER", prepare=prepare_scheduler),
        _kind("deployment", "deployments", m.Deployment, None, prepare=prepare_deployment),
        _kind("network", "networks", m.Network, None),
        # add/update/delete of these go through pyfi.core.users (hashing, grants)
        _kind("user", "users", m.User, "USER"),
        _kind("role", "roles", m.Role, "ROLE"),
    )
}
KINDS["user"] = replace(KINDS["user"], read=Right.LS_USER)
KINDS["worker"] = replace(KINDS["worker"], ls=Right.LS_WORKERS)  # the original rights list has LS_WORKERS only


def kind(name: str) -> Kind:
    return KINDS[name]
