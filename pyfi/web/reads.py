"""What the pages read beyond the REST API, with the same token and the same rights.

- ``GET /web/me``: the user's name, every right they hold (their roles'
  included: ``/api/users/me`` lists the rights held directly), and which
  lists they may read, so that a page shows only the buttons the API would
  honour and asks only for what the API would give.
- ``GET /web/counts``: calls per socket and state, for the network's boxes
  (READ, as ``ls calls``).
- ``GET /web/statuses``: the status ``ls`` shows of each processor, agent and
  worker the user may list: *lost* once a heartbeat is stale, where the rows
  the API lists say what their process last wrote.
- ``GET /web/previews?ids=...``: the arguments and result the result backend
  stored for up to :data:`MAX_PREVIEWS` calls, for the calls list (READ, as
  ``ls call --result``). Only calls the database knows are read.
"""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from pyfi.api.deps import DB, Me, core_of
from pyfi.core import calls, metrics, objects
from pyfi.core.access import acting_name, has_right, require, rights_of
from pyfi.core.kinds import kind
from pyfi.core.liveness import effective_status, shown_processor_status, shown_worker_status
from pyfi.enums import Right
from pyfi.errors import NotFound

router = APIRouter(include_in_schema=False)

#: the most calls one preview request reads
MAX_PREVIEWS = 100
#: the most rows of one kind whose status is read at once
MAX_STATUSES = 2000
#: the lists a page reads: the API path under /api/ -> the kind whose ``ls`` right it needs
LISTS = {"processors": "processor", "sockets": "socket", "queues": "queue", "plugs": "plug", "nodes": "node",
         "agents": "agent", "workers": "worker"}


@router.get("/web/me")
def me(session: DB, caller: Me) -> dict[str, Any]:
    """{"name", "rights": [...], "reads": {list: bool}}: the caller's rights (a role's too) and the lists they may read.

    ``reads`` names each list of :data:`LISTS` and ``calls`` (the calls, their counts and the live events: READ).
    """
    name = acting_name(session, caller.actor)
    reads = {path: has_right(session, caller.actor, kind(name_of_kind).ls) for path, name_of_kind in LISTS.items()}
    return {"name": name, "rights": sorted(right.value for right in rights_of(session, name)),
            "reads": reads | {"calls": has_right(session, caller.actor, Right.READ)}}


@router.get("/web/counts")
def call_counts(session: DB, caller: Me) -> dict[str, dict[str, dict[str, int]]]:
    """{"sockets": {socket: {state: calls}}}"""
    require(session, caller.actor, Right.READ)
    sockets: dict[str, dict[str, int]] = {}
    for (socket, state), count in metrics.calls_by_socket_and_state(session).items():
        sockets.setdefault(socket, {})[state] = count
    return {"sockets": sockets}


@router.get("/web/statuses")
def statuses(session: DB, caller: Me) -> dict[str, dict[str, dict[str, str | None]]]:
    """{"processors"|"agents"|"workers": {name: {"status", "error"}}}, for the kinds the caller may list."""
    shown = {"processor": shown_processor_status, "agent": lambda agent: (effective_status(agent), None),
             "worker": lambda worker: (shown_worker_status(worker), None)}
    found: dict[str, dict[str, dict[str, str | None]]] = {}
    for name, show in shown.items():
        if has_right(session, caller.actor, kind(name).ls):
            rows = objects.listing(session, caller.actor, kind(name), 1, MAX_STATUSES).rows
            found[f"{name}s"] = {row.name: status_of(*show(row)) for row in rows}
    return found


def status_of(status: object, error: str | None) -> dict[str, str | None]:
    return {"status": str(status), "error": error}


@router.get("/web/previews")
def previews(request: Request, session: DB, caller: Me,
             ids: Annotated[str, Query(max_length=MAX_PREVIEWS * 37)]) -> dict[str, dict[str, dict[str, Any]]]:
    """{"calls": {id: {"args", "kwargs", "result", "stored"}}} for the known calls among ``ids`` (comma separated)."""
    require(session, caller.actor, Right.READ)
    known = [ident for ident in dict.fromkeys(ids.split(",")[:MAX_PREVIEWS]) if ident and is_call(session, caller, ident)]
    backend = result_backend(request)
    return {"calls": {ident: stored(backend, ident) for ident in known}}


def is_call(session: DB, caller: Me, ident: str) -> bool:
    try:
        return calls.get_call(session, caller.actor, ident=ident).id == ident
    except NotFound:
        return False


def result_backend(request: Request) -> Any:
    """The Celery result backend of the app's settings, made once per server."""
    backend = getattr(request.app.state, "web_backend", None)
    if backend is None:
        from pyfi.messaging.app import make_app

        backend = request.app.state.web_backend = make_app(core_of(request).settings).backend
    return backend


def stored(backend: Any, ident: str) -> dict[str, Any]:
    """What the backend holds of one call (JSON only: anything else is refused, never decoded)."""
    from kombu.exceptions import ContentDisallowed

    try:
        meta = backend.get_task_meta(ident)
    except ContentDisallowed:
        return {"stored": "UNREADABLE", "args": None, "kwargs": None, "result": None}
    result = meta.get("result")
    if isinstance(result, BaseException):
        result = f"{type(result).__name__}: {result}"
    return {"stored": str(meta.get("status", "PENDING")), "args": meta.get("args"), "kwargs": meta.get("kwargs"),
            "result": result}
