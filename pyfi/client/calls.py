"""Sending socket calls as Celery signatures, and the handle to their result.

Each call is a signature routed like ``pyfi task run`` routes it (see
``pyfi.messaging.routing``): to the socket's broker queue, with the
``pyfi_socket`` header, a pre-assigned id, and ``root_id`` set to the flow's
tracking id. The queue is given by *name*: a signature inside a chain or
chord travels in the message body as JSON, where a kombu Queue object cannot
go. Celery expands the name to ``Queue(name, Exchange(name, "direct"), name)``,
the same durable queue as ``kombu_queue(name)``, and declares it in whichever
process publishes the step (the client, or the worker that finished the
previous step), which kombu's in-process virtual transports require.
"""
from __future__ import annotations

import time
import uuid
from typing import Any, Iterable

from pyfi.client.context import Context
from pyfi.errors import BackendUnavailable, CallFailed, CallTimeout
from pyfi.messaging.routing import Route

_DEFAULT: Any = object()


def new_id() -> str:
    return str(uuid.uuid4())


def signature(app: Any, route: Route, args: Iterable[Any], kwargs: dict[str, Any], call_id: str,
              tracking: str, parent: str | None = None) -> Any:
    """One call to one broker queue, ready to send alone or inside a workflow."""
    options: dict[str, Any] = {
        "task_id": call_id,
        "root_id": tracking,  # what the worker records as the call's tracking (flow) id
        "queue": route.broker_queue,
        "routing_key": route.broker_queue,
        "headers": route.headers(),
    }
    if parent is not None:
        options["parent_id"] = parent
    return app.signature(route.task_name, args=tuple(args), kwargs=dict(kwargs), **options)


def plan_routes(context: Context, socket_names: Iterable[str]) -> dict[str, list[Route]]:
    """The routes of every named socket (needs RUN_TASK): those planned within the context's bound, else read anew.

    The ones not planned recently are read in one transaction, which checks
    RUN_TASK again; see ``pyfi.client.context.ROUTES_TRUSTED_FOR``.
    """
    names = set(socket_names)
    routes = {name: context.planned.fresh(name) for name in names}
    stale = sorted(name for name, found in routes.items() if found is None)
    if stale:
        routes.update(_read_routes(context, stale))
    return routes


def _read_routes(context: Context, names: list[str]) -> dict[str, list[Route]]:
    """The routes read anew; while the database is away, the ones planned last (nothing can change them meanwhile)."""
    from pyfi.core import tasks

    planned_at = time.monotonic()
    try:
        with context.session() as session:
            routes = {name: tasks.plan(session, context.actor, name) for name in names}
    except BackendUnavailable:
        routes = context.planned.last(names)
        if routes is None:
            raise
    context.planned.keep(routes, planned_at)
    return routes


def send(context: Context, canvas: Any, ids: list[str], what: str) -> "Call":
    """Publish a call or a workflow of calls (``ids``: every call's id, the first the tracking id).

    Every call the client sends goes out here or through :func:`send_one`, and is recorded as pending
    in the background (:mod:`pyfi.client.pending`).
    """
    result = canvas.apply_async(root_id=ids[0])
    context.pending.note(canvas)
    return Call(context, result, ids, what)


def send_one(context: Context, route: Route, args: Iterable[Any], kwargs: dict[str, Any], what: str) -> "Call":
    """Publish one call along one route, its own flow: what :func:`send` does with a :func:`signature`, without
    building one (the path of ``Socket.delay``, as Celery's ``task.delay`` publishes)."""
    from pyfi.core.pending import Pending

    call_id = new_id()
    result = context.app.send_task(route.task_name, args=tuple(args), kwargs=dict(kwargs), task_id=call_id,
                                   root_id=call_id, queue=route.broker_queue, routing_key=route.broker_queue,
                                   headers=route.headers())
    context.pending.note_calls([Pending(call_id, route.task_name, route.socket_id, call_id)])
    return Call(context, result, [call_id], what)


class Call:
    """A sent call or workflow: ``.id`` (its tracking id), ``.ids``, ``.get(timeout=)``."""

    def __init__(self, context: Context, result: Any, ids: list[str], what: str) -> None:
        self.context = context
        self.result = result
        self.ids = ids
        self.what = what

    @property
    def id(self) -> str:
        """The first call's id, which is also every call's tracking id: ``pyfi ls call --id X --flow``."""
        return self.ids[0]

    @property
    def tracking(self) -> str:
        return self.ids[0]

    def ready(self) -> bool:
        return bool(self.result.ready())

    def get(self, timeout: float | None = _DEFAULT) -> Any:
        """The result; CallTimeout after ``timeout`` seconds (default: the context's), CallFailed on error."""
        from celery.exceptions import TimeoutError as CeleryTimeout

        limit = self.context.timeout if timeout is _DEFAULT else timeout
        try:
            value = self.result.get(timeout=limit, interval=0.05, propagate=True)
        except CeleryTimeout as exc:
            from pyfi.core.calls import explain_timeout

            error = CallTimeout(f"{self.what} ({self.id}) did not finish within {limit} s",
                                "it stays queued and runs when a worker takes it; to stop it: "
                                f"pyfi task cancel --tracking {self.id}; see `pyfi ls processors`, "
                                "or pass a longer timeout")
            self.context.pending.flush()  # (what the records say includes its pending ones)
            raise explain_timeout(self.context, error, self.ids, "pass a longer timeout") from exc
        except Exception as exc:  # noqa: BLE001 - the remote error, rebuilt by Celery as any exception type
            failed = self.failed_call()
            if failed is None:  # no call failed: the backend itself did
                from pyfi.core.results import unavailable

                raise unavailable(self.context.settings, "backend", exc) from exc
            raise CallFailed(f"{self.what}: call {failed} failed: {type(exc).__name__}: {exc}",
                             f"see `pyfi ls call --id {failed}`") from exc
        self.context.pending.took(self.ids)  # (every call of a flow whose last result came back ran)
        return value

    def failed_call(self) -> str | None:
        """The id of the first call of this flow that failed, if any."""
        for call_id in self.ids:
            if self.context.app.AsyncResult(call_id).state in ("FAILURE", "REVOKED"):
                return call_id
        return None

    def __repr__(self) -> str:
        return f"<Call {self.what} id={self.id}>"
