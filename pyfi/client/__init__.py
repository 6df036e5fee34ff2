"""The pyfi Python client: build a network and call it from Python.

::

    from pyfi.client import Queue, Processor, Socket, pipeline

    q = Queue(name="pyfi.queue1", type="direct")
    p = Processor(name="proc1", module="sample", gitrepo=REPO, branch="main")
    greet = Socket(name="greet", processor=p, queue=q, task="do_something")
    print(greet("World"))                      # Message:World

Names are imported on first use (PEP 562), so ``from pyfi.client import
socket`` in a processor module costs no database, Celery or SQLAlchemy
import. See docs/client.rst.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Context": "pyfi.client.context",
    "configure": "pyfi.client.context",
    "current": "pyfi.client.context",
    "Queue": "pyfi.client.objects",
    "Processor": "pyfi.client.objects",
    "Socket": "pyfi.client.objects",
    "Plug": "pyfi.client.objects",
    "Call": "pyfi.client.calls",
    "Step": "pyfi.client.flows",
    "Workflow": "pyfi.client.flows",
    "pipeline": "pyfi.client.flows",
    "parallel": "pyfi.client.flows",
    "funnel": "pyfi.client.flows",
    "socket": "pyfi.client.declare",
    "declared": "pyfi.client.declare",
    "register": "pyfi.client.declare",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pyfi.client' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return __all__
