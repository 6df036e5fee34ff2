"""Calls over HTTP: send one to a socket, list them, read one back with its result, events and provenance.

- ``POST /api/sockets/{name}/calls``: ``{"args": [...], "kwargs": {...}}`` is
  published at once, signed with the caller's key, as ``pyfi task run``
  sends it (RUN_TASK), recorded as pending, and answered with its id (202);
  nothing waits for the result.
- ``GET /api/calls``: ``pyfi ls calls``, with its filters (READ).
- ``GET /api/calls/{id}``: ``pyfi ls call --id ID --result`` (READ).
- ``GET /api/calls/{id}/tree``: ``pyfi ls call --tree`` (``?graph=true``: ``--graph``).
- ``POST /api/calls/{id}/cancel``: ``pyfi task cancel --id`` (CANCEL_TASK).
"""
from __future__ import annotations

import threading
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from pyfi.api.deps import DB, Me, core_of
from pyfi.api.models import NO_NUL, NamePath, UtcTime
from pyfi.config import Settings
from pyfi.core import calls, provenance, tasks
from pyfi.db.models import Call
from pyfi.enums import CallState
from pyfi.errors import InvalidInput

router = APIRouter(tags=["calls"])

#: a call id, or the start of one (at least 4 characters), as ``ls call --id`` takes it
CallId = Annotated[str, Path(min_length=calls.MIN_PREFIX, max_length=36, pattern=r"^[A-Za-z0-9-]+$",
                             description="the call's id, or the start of it (at least 4 characters)")]
#: the states whose result the result backend holds
ENDED = (CallState.FINISHED, CallState.FAILED)
SINCE = "only calls updated since: 30s, 10m, 2h, 3d, 1w ago, or an ISO time (UTC)"
#: what ``ls calls --since`` takes: a duration of up to 99999 units, or an ISO time of the years 1000-2099 (no 29 February)
SINCE_PATTERN = (r"^([0-9]{1,5}[smhdwSMHDW]|(1[0-9]|20)[0-9]{2}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])"
                 r"|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))"
                 r"([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?)?)$")


class CallIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    args: list[Any] = Field(default_factory=list, description="positional arguments (JSON values)")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="keyword arguments (JSON values)")


class CallSent(BaseModel):
    id: str = Field(description="the call's id (the first, when a fanout or topic queue sent several)")
    ids: list[str] = Field(description="every call sent: one per socket the queue routed it to")
    sockets: list[str]


class CallOut(BaseModel):
    """One call as ``ls calls`` lists it; times are UTC."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    socket: str | None = None
    state: str
    sender: str | None = None
    owner: str | None = None
    parent: str | None = None
    tracking: str | None = None
    error: str | None = None
    created: UtcTime
    started: UtcTime | None = None
    finished: UtcTime | None = None
    lastupdated: UtcTime
    cancelled_by: str | None = None


class EventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    note: str | None = None
    worker: str | None = None
    created: UtcTime


class ResultOut(BaseModel):
    state: str = Field(description="the result backend's: SUCCESS, FAILURE, PENDING (none stored)...")
    value: Any = Field(None, description="the result; for a failure {type, message}")


class CallDetail(CallOut):
    """A call with its events, provenance and, once it ended, its stored result."""

    taskparent: str | None = None
    parents: list[str] = Field(default_factory=list, description="every call whose result fed it")
    plug: str | None = Field(None, description="the plug that sent it")
    events: list[EventOut] = Field(default_factory=list)
    result: ResultOut | None = None


class CallPage(BaseModel):
    page: int
    rows: int
    total: int
    exact: bool = Field(True, description="false: total is the database's estimate")
    next: str | None = Field(None, description="the id to pass as after for the next rows")
    items: list[CallOut]


class TreeNode(BaseModel):
    call: str
    label: str
    children: list[TreeNode] = Field(default_factory=list)


class CallTree(BaseModel):
    call: str
    roots: list[TreeNode]


class Cancelled(BaseModel):
    call: str
    state: str = Field(description="its state before")
    cancelled: bool
    by: str | None = None
    text: str


def text_query(longest: int, description: str) -> Any:
    """A text query parameter the database can hold (no NUL, which PostgreSQL refuses)."""
    return Query(max_length=longest, pattern=NO_NUL, description=description)


def call_out(call: Call, model: type[CallOut] = CallOut, **extra: Any) -> Any:
    socket = call.socket.name if call.socket is not None else None
    return model.model_validate({**{f: getattr(call, f) for f in CallOut.model_fields if f != "socket"},
                                 "state": str(call.state), "socket": socket, **extra})


@router.post("/sockets/{name}/calls", status_code=202, response_model=CallSent)
def send_call(name: NamePath, body: CallIn, request: Request, response: Response, session: DB, me: Me) -> CallSent:
    """Send a call to a socket (RUN_TASK); its id at once, the result later from GET /api/calls/{id}."""
    from pyfi.core.keys import user_signer
    from pyfi.core.pending import of_sent, record_pending

    routes = tasks.plan(session, me.actor, name)
    if not routes:
        raise InvalidInput(f"socket {name!r}'s queue routes a call to no socket", "check its queue's type")
    signer = user_signer(session, me.actor)  # workers run only calls signed by a sender who may run them
    session.commit()  # (a key made just now is stored before a worker looks for it)
    settings = core_of(request).settings
    sent = SENDERS.send(settings, signer, routes, body.args, body.kwargs)
    record_pending(session, me.name, of_sent(sent))
    session.commit()  # listed before the answer: a GET right after finds it
    response.headers["Location"] = f"{request.scope.get('root_path', '')}/api/calls/{sent[0].id}"
    return CallSent(id=sent[0].id, ids=[c.id for c in sent], sockets=[c.route.socket_name for c in sent])


@router.get("/calls", response_model=CallPage)
def list_calls(session: DB, me: Me,
               page: Annotated[int, Query(ge=1, le=2**31 - 1)] = 1,
               rows: Annotated[int, Query(ge=1, le=1000)] = 10,
               ascend: Annotated[bool, Query(description="oldest first")] = False,
               socket: Annotated[str | None, text_query(200, "only this socket's calls")] = None,
               state: Annotated[CallState | None, Query(description="only calls in this state")] = None,
               since: Annotated[str | None, Query(max_length=64, pattern=SINCE_PATTERN, description=SINCE)] = None,
               tracking: Annotated[str | None, text_query(36, "only this flow's calls")] = None,
               after: Annotated[str | None, text_query(36, "the rows after this call (a page's next)")] = None,
               ) -> CallPage:
    """Calls, newest update first (READ), as ``pyfi ls calls`` lists them."""
    where = calls.CallFilter(socket=socket, state=state.value if state else None, since=since, tracking=tracking)
    found = calls.list_calls(session, me.actor, page, rows, ascend, where, after)
    return CallPage(page=found.number, rows=found.size, total=found.total, exact=found.exact, next=found.next,
                    items=[call_out(call) for call in found.rows])


@router.get("/calls/{ident}", response_model=CallDetail)
def get_call(ident: CallId, request: Request, session: DB, me: Me,
             result: Annotated[bool, Query(description="read its result once it ended")] = True) -> CallDetail:
    """One call: state, error, events, provenance and, once it ended, its result (READ)."""
    from pyfi.core.results import read_result

    call = calls.get_call(session, me.actor, ident=ident)
    origin = calls.provenance_of(session, call)
    settings = core_of(request).settings
    stored = read_result(settings, call.id, SENDERS.reader(settings)) if result and call.state in ENDED else None
    return call_out(call, CallDetail, taskparent=origin.taskparent, parents=origin.parents, plug=origin.plug,
                    events=[EventOut.model_validate(event) for event in call.events],
                    result=ResultOut(**stored.as_dict()) if stored is not None else None)


@router.get("/calls/{ident}/tree", response_model=CallTree)
def call_tree(ident: CallId, session: DB, me: Me,
              graph: Annotated[bool, Query(description="the whole flow's graph, from its root")] = False) -> CallTree:
    """What the call's result fed, transitively (READ); joins are marked as ``ls call --tree`` marks them."""
    call = calls.get_call(session, me.actor, ident=ident)
    roots = provenance.flow_graph(session, me.actor, call) if graph else [provenance.forward_tree(session, me.actor, call)]
    return CallTree(call=call.id, roots=[tree_node(root) for root in roots])


@router.post("/calls/{ident}/cancel", response_model=Cancelled)
def cancel_call(ident: CallId, session: DB, me: Me,
                terminate: Annotated[bool, Query(description="stop it if it is running")] = False) -> Cancelled:
    """Cancel a call that has not ended (CANCEL_TASK); one that ended is reported, not changed."""
    from pyfi.core.cancelling import cancel

    outcome = cancel(session, me.actor, ident, None, terminate)[0]
    return Cancelled(call=outcome.call_id, state=str(outcome.state), cancelled=outcome.cancelled, by=outcome.by,
                     text=outcome.text)


def tree_node(root: provenance.Node) -> TreeNode:
    """The tree as models, built without recursion (a flow may be thousands of calls deep)."""
    top = TreeNode(call=root.call_id, label=root.label)
    stack = [(root, top)]
    while stack:
        node, built = stack.pop()
        for child in node.children:
            made = TreeNode(call=child.call_id, label=child.label)
            built.children.append(made)
            stack.append((child, made))
    return top


class Senders:
    """One checked Celery app per signing key, kept: checking the broker and backend once, not per call.

    Celery apps are made to be shared by threads (the routes run in FastAPI's thread pool).
    """

    def __init__(self) -> None:
        self._apps: dict[tuple[str, str, str], Any] = {}
        self._lock = threading.Lock()

    def send(self, settings: Settings, signer: Any, routes: list[Any], args: list[Any],
             kwargs: dict[str, Any]) -> list[tasks.SentCall]:
        from kombu.exceptions import OperationalError

        from pyfi.core.results import unavailable

        key = (settings.broker, settings.backend, signer.key_id)
        app = self._app(key, settings, signer)
        try:
            return tasks.send(app, routes, args, kwargs=kwargs)
        except (OperationalError, OSError) as exc:  # the broker answered the check, then went away
            with self._lock:
                self._apps.pop(key, None)
            raise unavailable(settings, "broker", exc) from exc

    def reader(self, settings: Settings) -> Any:
        """The app results are read with (no signer: it sends nothing), made once per backend."""
        from pyfi.messaging.app import make_app

        key = (settings.broker, settings.backend, "")
        with self._lock:
            if key not in self._apps:
                self._apps[key] = make_app(settings)
            return self._apps[key]

    def _app(self, key: tuple[str, str, str], settings: Settings, signer: Any) -> Any:
        from pyfi.core.results import checked_app

        with self._lock:
            app = self._apps.get(key)
        if app is None:
            app = checked_app(settings, signer=signer)  # BackendUnavailable (503) names what does not answer
            with self._lock:
                self._apps[key] = app
        return app


SENDERS = Senders()
