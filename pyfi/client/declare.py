"""Declaring a processor's sockets in its own code: ``@socket(queue="q")``.

The decorator only records the declaration on the function and returns the
function unchanged, so the module imports (and the worker calls it) with no
database, broker or pyfi settings at all. ``register`` reads the
declarations later, where a database is at hand, and finds or creates the
sockets (and their queues) through the client objects.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable, TypeVar

from pyfi.errors import InvalidInput

F = TypeVar("F", bound=Callable[..., Any])
ATTRIBUTE = "__pyfi_sockets__"


@dataclass(frozen=True)
class Declared:
    """One ``@socket(...)`` on one function."""

    name: str
    queue: str
    function: str
    interval: int | None = None
    wait: bool = False


def socket(queue: str, name: str | None = None, *, interval: int | None = None, wait: bool = False) -> Callable[[F], F]:
    """Declare the decorated function a socket on ``queue`` (named after the function by default).

    Stack it to bind one function to several queues; each needs its own ``name``.
    """

    def declare(function: F) -> F:
        found = getattr(function, ATTRIBUTE, ())
        setattr(function, ATTRIBUTE, (*found, Declared(name or function.__name__, queue, function.__name__, interval, wait)))
        return function

    return declare


def declared(module: ModuleType) -> list[Declared]:
    """Every socket declared by functions defined in ``module`` (not ones it imported), in name order."""
    found = []
    for value in vars(module).values():
        if callable(value) and getattr(value, "__module__", None) == module.__name__:
            found.extend(getattr(value, ATTRIBUTE, ()))
    return sorted(found, key=lambda d: d.name)


def register(module: ModuleType | str, processor: Any, *, context: Any = None) -> list[Any]:
    """Find or create the queues and sockets ``module`` declares, on ``processor`` (an object or name)."""
    from pyfi.client.objects import Processor, Queue, Socket

    if isinstance(module, str):
        module = importlib.import_module(module)
    if isinstance(processor, str):
        processor = Processor(processor, context=context)
    if processor.module != module.__name__:
        raise InvalidInput(f"processor {processor.name!r} runs module {processor.module!r}, not {module.__name__!r}",
                           f"register the module {processor.module!r}, or create a processor with module={module.__name__!r}")
    sockets = []
    for item in declared(module):
        queue = Queue(item.queue, context=processor.context)
        sockets.append(Socket(item.name, processor=processor, queue=queue, task=item.function,
                              interval=item.interval, wait=item.wait, context=processor.context))
    return sockets
