"""Workflows of socket calls on Celery's canvas: pipeline (chain), parallel (group), funnel (chord).

A workflow is built from steps (``socket.s(*args)``, or a socket object for
a call with no leading arguments) and other workflows. Sending it gives
every call an id up front; the first call's id is the workflow's tracking
id, set as ``root_id`` on every signature, so the workers record all of its
calls, however deep, under one flow. The broker keeps each pending step
(acks late, redelivered if a worker dies), which makes workflows durable.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Union

from pyfi.client.calls import Call, new_id, plan_routes, send, signature
from pyfi.client.context import Context, current
from pyfi.errors import InvalidInput
from pyfi.messaging.routing import Route


@dataclass(frozen=True)
class Step:
    """A call of one socket with its leading arguments (a previous step's result comes first)."""

    socket: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    context: Context | None = None


Item = Union[Step, "Workflow", Any]  # Any: a client Socket object


class Workflow:
    """Calls composed with ``pipeline``, ``parallel`` or ``funnel``; send with ``.delay()`` or call it."""

    def __init__(self, shape: str, items: list[Item], into: Item | None = None) -> None:
        if not items:
            raise InvalidInput(f"a {shape} needs at least one step", f"e.g. {shape}([greet.s('hi'), ...])")
        self.shape = shape
        self.items = [as_item(i) for i in items]
        self.into = as_item(into) if into is not None else None

    def steps(self) -> list[Step]:
        """Every socket call, in the order ids are assigned (the first is the tracking id)."""
        found: list[Step] = []
        for item in [*self.items, *([self.into] if self.into is not None else [])]:
            found.extend(item.steps() if isinstance(item, Workflow) else [item])
        return found

    @property
    def context(self) -> Context:
        return self.steps()[0].context or current()

    def delay(self) -> Call:
        """Send every call; returns at once with a handle to the final result."""
        context = self.context
        steps = self.steps()
        routes = single_routes(plan_routes(context, [s.socket for s in steps]))
        ids = Ids([new_id() for _ in steps])
        canvas = build(context.app, self, routes, ids, ids.all[0])
        return send(context, canvas, ids.all, f"{self.shape} of {len(steps)} calls")

    def __call__(self, timeout: float | None = None) -> Any:
        """Send and wait for the result (``timeout`` seconds, default: the context's)."""
        handle = self.delay()
        return handle.get() if timeout is None else handle.get(timeout=timeout)

    def __repr__(self) -> str:
        return f"<{self.shape} of {len(self.steps())} calls>"


class Ids:
    """Pre-assigned call ids, handed out in step order."""

    def __init__(self, ids: list[str]) -> None:
        self.all = ids
        self._iter: Iterator[str] = iter(ids)
        self.last: str | None = None

    def next(self) -> str:
        self.last = next(self._iter)
        return self.last


def as_item(item: Any) -> Step | Workflow:
    if isinstance(item, (Step, Workflow)):
        return item
    to_step = getattr(item, "s", None)  # a client Socket: a call with no leading arguments
    if callable(to_step):
        return to_step()
    raise InvalidInput(f"cannot use {item!r} as a workflow step", "pass socket.s(args...), a Socket or a workflow")


def single_routes(routes: dict[str, list[Route]]) -> dict[str, Route]:
    """A workflow step needs exactly one destination to pass its result on."""
    single = {}
    for name, found in routes.items():
        if len(found) != 1:
            raise InvalidInput(f"socket {name!r} sends each call to {len(found)} destinations (fanout or topic queue)",
                               "use a socket on a direct queue as a workflow step, or call it on its own")
        single[name] = found[0]
    return single


def build(app: Any, item: Step | Workflow, routes: dict[str, Route], ids: Ids, tracking: str) -> Any:
    """The Celery canvas for ``item``."""
    from celery import chain, chord, group

    if isinstance(item, Step):
        return signature(app, routes[item.socket], item.args, item.kwargs, ids.next(), tracking)
    if item.shape == "pipeline":
        return chain(*_pipeline_parts(app, item, routes, ids, tracking), app=app)
    parts = [build(app, i, routes, ids, tracking) for i in item.items]
    if item.shape == "parallel":
        return group(parts, app=app)
    last_of_header = ids.last
    body = build(app, item.into, routes, ids, tracking)
    # The body is sent by the worker that ends the header's last call (on every
    # result backend pyfi uses: pyfi.messaging.chords), whichever call that is;
    # name a real call of the flow as its parent so provenance does not depend on it.
    _set_parent(body, last_of_header)
    return chord(group(parts, app=app), body, app=app)


def _pipeline_parts(app: Any, item: Workflow, routes: dict[str, Route], ids: Ids, tracking: str) -> list[Any]:
    parts: list[Any] = []
    previous_last: str | None = None
    for index, step in enumerate(item.items):
        parts.append(build(app, step, routes, ids, tracking))
        if index and _is_parallel(item.items[index - 1]):
            # Celery turns "parallel, then a step" into a chord: parent it as funnel does
            _set_parent(parts[-1], previous_last)
        previous_last = ids.last
    return parts


def _is_parallel(item: Any) -> bool:
    return isinstance(item, Workflow) and item.shape == "parallel"


def _set_parent(canvas: Any, parent: str | None) -> None:
    """Set ``parent_id`` on the call(s) that start ``canvas``."""
    from celery import group

    tasks = getattr(canvas, "tasks", None)
    if tasks is None:
        canvas.set(parent_id=parent)
        return
    for task in tasks if isinstance(canvas, group) else tasks[:1]:
        _set_parent(task, parent)


def pipeline(items: list[Item]) -> Workflow:
    """Each call's result becomes the first argument of the next (Celery chain)."""
    return Workflow("pipeline", items)


def parallel(items: list[Item]) -> Workflow:
    """All calls at once; the result is the list of their results (Celery group)."""
    return Workflow("parallel", items)


def funnel(items: list[Item], into: Item) -> Workflow:
    """All ``items`` at once, then ``into`` with the list of their results first (Celery chord)."""
    return Workflow("funnel", items, into)
