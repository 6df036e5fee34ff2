"""A worker booted ahead of need: import everything, then wait for the agent's go.

Most of a worker's start is importing Python code (Celery, kombu, SQLAlchemy,
the broker's and the database's clients): about 1.3 s of 1.7 s on a 2-core
machine. An agent keeps one such process ready per processor it serves
(``pyfi.agent.supervisor.Spare``), so ``pyfi proc start`` or ``restart``
only pays for connecting and forking the pool.

The process is the same ``pyfi worker start`` command with ``--standby``: it
stays in its own session and writes to the same log, and the agent's pipe
is its stdin. A line ``go`` starts the worker. End of file (the agent
discarded the spare, or died) exits it without having touched the broker
or the database.
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import IO

from pyfi.config import Settings
from pyfi.worker.control import state_path

GO = "go"
STANDBY = "standby"  # the state a spare writes once it is ready

#: imported by every worker's start, whichever its broker and processor
MODULES = (
    "pyfi.worker.main",
    "celery.apps.worker",
    "celery.app.trace",
    "celery.worker.consumer",
    "celery.worker.strategy",
    "celery.concurrency.prefork",
    "celery.concurrency.asynpool",
    "kombu.matcher",
)


def preload(settings: Settings) -> None:
    """Import the worker's modules and the clients of the configured broker, backend and database."""
    for name in MODULES:
        importlib.import_module(name)
    from sqlalchemy.engine import make_url

    from pyfi.messaging.app import make_app

    app = make_app(settings)
    app.connection_for_read().transport_cls  # noqa: B018 - imports the transport; connects only when used
    app.backend  # noqa: B018 - the same for the result backend's client
    make_url(settings.db).get_dialect()


def wait_for_go(control: Path | None, stream: IO[str] = sys.stdin) -> bool:
    """Say ready (state ``standby``), then block until the agent says go (True) or closes the pipe (False)."""
    if control is not None:
        state_path(control).write_text(STANDBY)
    return stream.readline().strip() == GO
