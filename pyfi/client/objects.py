"""Queue, Processor, Socket and Plug: client objects that find or create their rows.

``Socket(name="greet", processor=p, queue=q, task="do_something")`` makes
the database agree with what it is given, as ``pyfi compose`` does: a
missing row is created, the given fields of an existing one are updated if
they differ, and ``Socket(name="greet")`` alone just finds it. All of it goes
through ``pyfi.core`` (``desired.ensure``), with the CLI's rights checks for
the context's user. An object is a snapshot of its row: its attributes are
plain values (names, not rows) read when it was made.
"""
from __future__ import annotations

from typing import Any, ClassVar

from pyfi.client.calls import Call, new_id, plan_routes, send, send_one, signature
from pyfi.client.context import Context, current
from pyfi.client.flows import Step
from pyfi.core.desired import SCHEMA, Action


class PyfiObject:
    kind: ClassVar[str]

    def __init__(self, name: str, *, context: Context | None = None, **fields: Any) -> None:
        from pyfi.core.desired import current_value, ensure

        self.context = context or current()
        with self.context.session() as session:
            change = ensure(session, self.context.actor, self.kind, name, fields)
            if change.action != Action.UNCHANGED:  # this context sends along what it changed at once
                self.context.planned.forget()
            row = change.obj
            self.id: str = row.id
            self.name: str = row.name
            self.change: Action = change.action
            for key in SCHEMA[self.kind]:
                value = current_value(session, self.kind, row, key, {})
                setattr(self, key, getattr(value, "value", value))

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={getattr(self, k)!r}" for k in SCHEMA[self.kind] if getattr(self, k) is not None)
        return f"{type(self).__name__}(name={self.name!r}, {shown})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PyfiObject) and (self.kind, self.id) == (other.kind, other.id)

    def __hash__(self) -> int:
        return hash((self.kind, self.id))


class Queue(PyfiObject):
    """``Queue(name="q", type="direct")``: a broker destination (direct, topic or fanout)."""

    kind = "queue"

    def __init__(self, name: str, type: str | None = None, *, context: Context | None = None, **fields: Any) -> None:
        super().__init__(name, context=context, type=type, **fields)


class Processor(PyfiObject):
    """``Processor(name="p", module="sample", gitrepo=URL, branch="main")``: code an agent runs."""

    kind = "processor"

    def __init__(self, name: str, module: str | None = None, gitrepo: str | None = None, *,
                 context: Context | None = None, **fields: Any) -> None:
        super().__init__(name, context=context, module=module, gitrepo=gitrepo, **fields)


class Socket(PyfiObject):
    """A processor's function bound to a queue; call it like the function: ``greet("hi")``."""

    kind = "socket"

    def __init__(self, name: str, processor: Any = None, queue: Any = None, task: Any = None, *,
                 context: Context | None = None, **fields: Any) -> None:
        task = getattr(task, "__name__", task)  # the function itself stands for its name
        super().__init__(name, context=context, processor=processor, queue=queue, task=task, **fields)

    def s(self, *args: Any, **kwargs: Any) -> Step:
        """A workflow step calling this socket (the previous step's result goes before ``args``)."""
        return Step(self.name, args, kwargs, self.context)

    def delay(self, *args: Any, **kwargs: Any) -> Call:
        """Send one call (one per destination on a fanout/topic queue); returns at once."""
        from celery import group

        routes = plan_routes(self.context, [self.name])[self.name]
        if len(routes) == 1:
            return send_one(self.context, routes[0], args, kwargs, f"call to {self.name}")
        app = self.context.app
        ids = [new_id() for _ in routes]
        signatures = [signature(app, r, args, kwargs, call_id, ids[0]) for r, call_id in zip(routes, ids, strict=True)]
        return send(self.context, group(signatures, app=app), ids, f"{len(ids)} calls to {self.name}")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Send one call and return its result (waits up to the context's timeout)."""
        return self.delay(*args, **kwargs).get()


class Plug(PyfiObject):
    """``Plug(name=..., source=a, target=b, queue=q)``: a's result (or error) is sent on to b."""

    kind = "plug"

    def __init__(self, name: str, source: Any = None, target: Any = None, queue: Any = None, *,
                 context: Context | None = None, **fields: Any) -> None:
        super().__init__(name, context=context, source=source, target=target, queue=queue, **fields)
