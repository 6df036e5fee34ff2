"""Tables (prettytable, in the shapes of the original pyfi documentation) and JSON for ``ls`` output.

Every cell shows control characters as escapes (``\\x1b``), whatever the
database holds; JSON escapes them itself.
"""
from __future__ import annotations

import datetime as dt
import json
from typing import Any, Callable, Iterable

from prettytable import PrettyTable

from pyfi.db.base import utcnow
from pyfi.masking import mask_url, printable

Column = tuple[str, Callable[[Any], Any]]
COMMON: list[Column] = [("Name", lambda o: o.name), ("ID", lambda o: o.id), ("Owner", lambda o: o.owner)]
UPDATED: Column = ("Last Updated", lambda o: o.lastupdated)


def _call_state(call: Any) -> str:
    """The state, with how long a queued call has waited and who cancelled a cancelled one."""
    if call.state == "pending" and call.created is not None:
        return f"pending {max((utcnow() - call.created).total_seconds(), 0):.0f} s"
    if call.state == "cancelled":
        return f"cancelled by {call.cancelled_by or '?'}"
    return str(call.state)


def _agent_status(agent: Any) -> Any:
    from pyfi.core.liveness import effective_status  # stale heartbeat -> lost

    return effective_status(agent)


def _worker_status(worker: Any) -> Any:
    from pyfi.core.liveness import shown_worker_status  # a hand-started worker that stopped refreshing its row -> lost

    return shown_worker_status(worker)


def shown_processor(processor: Any) -> tuple[Any, Any]:
    from pyfi.core.liveness import shown_processor_status  # active, but no live agent runs it -> lost

    return shown_processor_status(processor)


def _name(obj: Any) -> Any:
    return obj.name if obj is not None else None


def _node_agent(node: Any) -> Any:
    """The status of the node's agent (lost when its heartbeat is stale); None before one ever started."""
    return _agent_status(node.agents[0]) if node.agents else None


def _node_state(node: Any) -> str:
    return "draining" if node.draining else "cordoned" if node.cordoned else "schedulable"


def _node_deployments(node: Any) -> str:
    """``processor:workers`` for each deployment on the node."""
    from sqlalchemy import select
    from sqlalchemy.orm import object_session

    from pyfi.db.models import Deployment

    query = select(Deployment).where(Deployment.hostname == node.name)
    return ", ".join(sorted(f"{d.processor.name}:{d.cpus}" for d in object_session(node).scalars(query)))


def _placed_by(deployment: Any) -> str:
    if deployment.scheduler_id is None:
        return "(by hand)"
    from sqlalchemy.orm import object_session

    from pyfi.db.models import Scheduler

    return object_session(deployment).get(Scheduler, deployment.scheduler_id).name


def _next_fire(socket: Any) -> Any:
    """When a timed socket fires next (UTC), or why it does not."""
    if not (socket.interval or socket.cron):
        return None
    if not socket.processor.beat:
        return "never: its processor has no -b/--beat"
    from pyfi.scheduler.beat import next_tick

    return next_tick(socket, utcnow()).isoformat(sep=" ")


#: how much of an error a table cell shows (``ls processor -n`` prints it whole under the table)
BRIEF = 60


def _brief(text: str | None) -> str | None:
    """An error's first line, cut to fit a table cell."""
    if not text:
        return None
    line = text.strip().splitlines()[0] if text.strip() else text
    return line if len(line) <= BRIEF else line[: BRIEF - 3] + "..."


COLUMNS: dict[str, list[Column]] = {
    "queue": COMMON + [UPDATED, ("Type", lambda o: o.type), ("Durable", lambda o: o.durable)],
    "processor": COMMON + [
        UPDATED, ("Module", lambda o: o.module), ("Hostname", lambda o: o.hostname), ("Workers", lambda o: o.workers),
        ("Requested", lambda o: o.requested_status), ("Status", lambda o: shown_processor(o)[0]),
        ("Git Repo", lambda o: mask_url(o.gitrepo)), ("Branch", lambda o: o.branch), ("Commit", lambda o: o.commit),
        ("Error", lambda o: _brief(shown_processor(o)[1])),
    ],
    "socket": COMMON + [
        UPDATED, ("Processor", lambda o: _name(o.processor)), ("Queue", lambda o: _name(o.queue)),
        ("Task", lambda o: o.task.path), ("Interval", lambda o: o.interval), ("Cron", lambda o: o.cron),
        ("Next Fire", _next_fire), ("Wait", lambda o: o.wait),
    ],
    "plug": COMMON + [
        UPDATED, ("Type", lambda o: o.type), ("Queue", lambda o: _name(o.queue)), ("Source", lambda o: _name(o.source)),
        ("Target", lambda o: _name(o.target)), ("Position", lambda o: o.position),
    ],
    "node": COMMON + [UPDATED, ("Hostname", lambda o: o.hostname), ("CPUs", lambda o: o.cpus), ("Load", lambda o: o.load),
                      ("Memory", lambda o: o.memory), ("Disk", lambda o: o.disk), ("Agent", _node_agent),
                      ("State", _node_state), ("Deployments", _node_deployments)],
    "agent": COMMON + [UPDATED, ("Node", lambda o: _name(o.node)), ("Hostname", lambda o: o.hostname),
                       ("Pid", lambda o: o.pid), ("Port", lambda o: o.port), ("Status", lambda o: _agent_status(o))],
    "worker": COMMON + [
        UPDATED, ("Agent", lambda o: _name(o.agent) if o.agent_id else "(by hand)"), ("Processor", lambda o: _name(o.processor)),
        ("Pid", lambda o: o.pid), ("Concurrency", lambda o: o.concurrency), ("Status", lambda o: _worker_status(o)),
        ("Commit", lambda o: o.commit[:12] if o.commit else None),  # the code it runs (--json: all of it)
    ],
    "scheduler": COMMON + [UPDATED, ("Strategy", lambda o: o.strategy), ("Interval", lambda o: o.interval),
                           ("Enabled", lambda o: o.enabled),
                           ("Node Names", lambda o: ", ".join(sorted(n.name for n in o.nodes)))],
    "deployment": COMMON + [UPDATED, ("Processor", lambda o: _name(o.processor)), ("Hostname", lambda o: o.hostname),
                            ("CPUs", lambda o: o.cpus), ("Placed By", _placed_by)],
    "placement": [("When", lambda o: o.created), ("Scheduler", lambda o: o.scheduler), ("Processor", lambda o: o.processor),
                  ("Node", lambda o: o.node), ("Before", lambda o: o.before), ("After", lambda o: o.after),
                  ("Reason", lambda o: o.reason)],
    "network": COMMON + [UPDATED, ("Description", lambda o: o.description)],
    "user": COMMON + [("Email", lambda o: o.email)],
    "role": COMMON + [UPDATED],
    "task": [("Name", lambda o: o.path), ("ID", lambda o: o.id), ("Last Updated", lambda o: o.lastupdated)],
    "call": COMMON + [UPDATED, ("Socket", lambda o: o.socket.task.path if o.socket else o.name),
                      ("Started", lambda o: o.started), ("Finished", lambda o: o.finished),
                      ("State", lambda o: _call_state(o))],
    "event": COMMON + [UPDATED, ("Note", lambda o: o.note), ("Worker", lambda o: o.worker)],
    # the original pyfi documentation's three columns, then the flow and the plug; a join lists every parent
    "provenance": [("Task", lambda o: o.id), ("Task Parent", lambda o: o.taskparent), ("Flow Parent", lambda o: o.parent),
                   ("Tracking", lambda o: o.tracking), ("Plug", lambda o: o.plug)],
    "privilege": [("Name", lambda o: o.grantee), ("Right", lambda o: o.right), ("Last Updated", lambda o: o.lastupdated),
                  ("By", lambda o: o.owner)],
}


def cell(value: Any) -> str:
    """A table cell: control characters escaped (stored text may come from anyone: ``pyfi.masking.printable``)."""
    return "None" if value is None else printable(str(value))


def table(kind: str, rows: Iterable[Any]) -> str:
    columns = COLUMNS[kind]
    pt = PrettyTable([header for header, _ in columns])
    for row in rows:
        pt.add_row([cell(getter(row)) for _, getter in columns])
    return pt.get_string()


def paged_table(kind: str, page: Any) -> str:
    """The listing of the original pyfi documentation: Page and Row columns, then the footer."""
    columns = COLUMNS[kind]
    pt = PrettyTable(["Page", "Row"] + [header for header, _ in columns])
    for number, row in enumerate(page.rows, start=1):
        pt.add_row([page.number, number] + [cell(getter(row)) for _, getter in columns])
    return pt.get_string() + "\n" + footer(page)


def footer(page: Any) -> str:
    about = "" if getattr(page, "exact", True) else "about "
    return f"Page {page.number} of {about}{page.pages} of {about}{page.total} total records"


def record(kind: str, obj: Any) -> dict[str, Any]:
    """Machine-readable row: every column of the model, plus related names."""
    data = {k: jsonable(v) for k, v in obj.to_dict().items() if k != "password_hash"}
    if "gitrepo" in data and data["gitrepo"]:
        data["gitrepo"] = mask_url(data["gitrepo"])
    if kind == "agent":
        data["status"] = jsonable(_agent_status(obj))
    if kind == "processor":
        data["status"], data["error"] = map(jsonable, shown_processor(obj))
    if kind == "worker":
        data["status"] = jsonable(_worker_status(obj))
    for header, getter in COLUMNS.get(kind, []):
        key = header.lower().replace(" ", "_")
        if key not in data and key.replace("_", "") not in data:  # (no last_updated next to lastupdated)
            data[key] = jsonable(getter(obj))
    return data


def jsonable(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value if not hasattr(value, "value") else value.value
    return str(value)


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, default=str)
