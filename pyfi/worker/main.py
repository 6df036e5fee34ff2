"""The worker process: one processor's sockets, consumed by a Celery worker.

Steps: bootstrap (settings, spec, code) -> register tasks -> fork the
sidecar that records and publishes -> connect the lifecycle hooks -> consume
until told to stop (SIGTERM: warm shutdown) -> stop the sidecar once every
record is written.
"""
from __future__ import annotations

import atexit
import importlib
import logging
import os
import socket as _socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from celery import signals as celery_signals
from sqlalchemy.exc import DBAPIError

from pyfi.config import Settings
from pyfi.core.keys import processor_signer
from pyfi.db.engine import session_scope
from pyfi.errors import InvalidInput, PermissionDenied, PyfiError
from pyfi.messaging.app import HOLDER_OPTION, keep_results_through_restarts, make_app
from pyfi.messaging.routing import kombu_queues
from pyfi.messaging.signing import Signer
from pyfi.worker.consumer import SocketConsumer
from pyfi.worker.cancels import Cancellations, CancelWatch
from pyfi.worker.control import PauseControl, error_path, problems_path
from pyfi.worker.progress import ProgressReport
from pyfi.worker.credentials import Credentials
from pyfi.worker.gate import Gate
from pyfi.worker.lifecycle import Lifecycle
from pyfi.worker.loader import load_module
from pyfi.worker.plugs import Forwarder
from pyfi.worker.pool import TaskPool
from pyfi.worker.presence import Presence
from pyfi.worker.sidecar import Sidecar, start_sidecar
from pyfi.worker.sink import RecordSink
from pyfi.worker.spec import WorkerSpec, load_spec
from pyfi.worker.steps import Steps
from pyfi.worker.tasks import register_tasks, runnable_sockets
from pyfi.worker.wakeup import SignalWakeup, forget_wakeup

log = logging.getLogger("pyfi.worker")


@dataclass(frozen=True)
class WorkerOptions:
    """Node-level overrides an agent passes to every worker it starts."""

    concurrency: int | None = None  # processes per worker (default: the processor's -w)
    prefetch: int | None = None  # messages each process may hold (Celery's prefetch multiplier)
    celery_config: str | None = None  # module.object with extra Celery settings


def bootstrap(settings: Settings, processor: str, path: Path | None, control: Path | None,
              options: WorkerOptions = WorkerOptions(),
              credentials: Credentials | None = None, node: str | None = None) -> tuple[Any, WorkerSpec, Sidecar | None]:
    """Build the Celery app for ``processor`` with its tasks and hooks, and start its sidecar.

    ``credentials``: the login and signing key an agent gave (``settings.db``
    is then that login); without them (a worker started by hand) the key is
    read from the database, which needs the database owner's login.
    """
    with session_scope(settings.db) as session:
        spec = load_spec(session, processor)
        signer = signer_of(session, spec, credentials)  # what this worker sends carries its processor's key
    module = load_module(spec.module, path)
    runnable, problems = runnable_sockets(spec, module, path)
    if problems:
        spec = spec.keeping(runnable)
        log.error("processor %s: %s", spec.processor, "; ".join(problems))
        if control is not None:  # the agent shows it as the processor's error, next to 'running'
            problems_path(control).write_text("; ".join(problems))
    app = make_app(settings, main=f"pyfi.{spec.processor}", signer=signer)
    keep_results_through_restarts(app, settings.backend)
    app.conf.task_queues = kombu_queues(spec.broker_queues)
    app.conf.pyfi_queues = spec.broker_queues
    app.conf.pyfi_control_file = str(control) if control else None
    app.conf.pyfi_socket_tasks = {s.id: s.task_name for s in spec.sockets}  # see pyfi.worker.consumer
    app.conf.pyfi_socket_names = {s.id: s.name for s in spec.sockets}  # task events name calls so (messaging.task_events)
    app.steps["consumer"].add(PauseControl)
    app.steps["consumer"].add(ProgressReport)  # the agent restarts a worker that holds calls no process takes
    app.steps["consumer"].add(SignalWakeup)
    celery_signals.worker_process_init.connect(forget_wakeup, weak=False)
    apply_options(app, options)
    hold_as(app, control, node)
    forwarder = Forwarder(settings, [s.id for s in spec.sockets], signer=signer)
    steps = Steps.of(spec)
    sidecar = start_sidecar(settings.db, settings.pubsub, spec.owner, steps, namespace=spec.namespace, signer=signer)
    sink = RecordSink(sidecar.address if sidecar else None, settings.db, settings.pubsub, spec.owner, steps,
                      namespace=spec.namespace, signer=signer)
    lifecycle = Lifecycle(spec, sink, app, forwarder)
    register_tasks(app, spec, module, hooks=lifecycle)
    lifecycle.connect()
    cancellations = lifecycle.cancellations = app.conf.pyfi_cancellations = Cancellations(
        settings.db, [s.id for s in spec.sockets])  # see pyfi.worker.cancels
    app.steps["consumer"].add(CancelWatch)
    app.conf.pyfi_gate = Gate(settings.db, spec.processor_id, {s.id for s in spec.sockets},  # see pyfi.worker.consumer
                              {s.task_name for s in spec.sockets}, on_refused=lifecycle.on_refused,
                              cancellations=cancellations, on_cancelled=lifecycle.on_cancelled)
    return app, spec, sidecar


def signer_of(session: Any, spec: WorkerSpec, credentials: Credentials | None) -> Signer:
    if credentials is not None:
        return Signer(credentials.key_id, credentials.private_key)
    try:
        return processor_signer(session, spec.processor_id)
    except DBAPIError as exc:  # a login that may not read the processor's key
        raise PermissionDenied(f"this login cannot read processor {spec.processor!r}'s signing key",
                               "start a worker by hand over the database owner's login") from exc


def apply_options(app: Any, options: WorkerOptions) -> None:
    if options.celery_config:
        app.config_from_object(load_object(options.celery_config), force=True)
        app.conf.update(celery_config_guard(app))
    if options.prefetch:
        app.conf.worker_prefetch_multiplier = options.prefetch


def hold_as(app: Any, control: Path | None, node: str | None = None) -> None:
    """Name this worker's holder id on Redis: its agent gives back what it held if it dies (redis_transport).

    An agent's worker is ``<node>/<run directory>``: when the whole node is lost, a live agent gives back what
    every worker of that node held (pyfi.agent.lostnodes).
    """
    if not str(app.conf.broker_url).startswith("redis://"):
        return  # (other transports take no such option: the embedded broker's would hand it to create_engine)
    holder = (holder_of(node, control.parent.name) if control
              else f"{_socket.gethostname()}.{os.getpid()}.{time.time_ns()}")
    app.conf.broker_transport_options = {**(app.conf.broker_transport_options or {}), HOLDER_OPTION: holder}


def holder_of(node: str | None, run_dir: str) -> str:
    """The Redis holder id of an agent's worker (see :func:`hold_as`)."""
    return f"{node}/{run_dir}" if node else run_dir


def load_object(path: str) -> Any:
    """``module.object`` named on the agent's command line (the operator's own code)."""
    module_name, _, attr = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise InvalidInput(f"cannot load Celery config {path!r}: {exc}", "give module.object importable by the worker") from exc


def celery_config_guard(app: Any) -> dict[str, Any]:
    """Settings a config object may not weaken: JSON only, never pickle."""
    return {"accept_content": ["json"], "result_accept_content": ["json"], "task_serializer": "json",
            "result_serializer": "json"}


def run(settings: Settings, processor: str, path: Path | None = None, control: Path | None = None,
        node: str | None = None, loglevel: str = "WARNING", options: WorkerOptions = WorkerOptions(),
        credentials: Credentials | None = None) -> None:
    """Consume until shutdown; flush every pending record before exiting."""
    if credentials is not None:
        settings = settings.with_(db=credentials.db)
    try:
        app, spec, sidecar = bootstrap(settings, processor, path, control, options, credentials, node)
    except PyfiError as exc:
        if control is not None:  # the agent shows this as the processor's error
            error_path(control).write_text(str(exc))
        raise
    if not spec.sockets:
        log.warning("processor %s has no sockets: nothing to consume", processor)
    hostname = f"{spec.processor}.{os.getpid()}@{node or _socket.gethostname()}"
    concurrency = options.concurrency or spec.concurrency
    presence = None
    if control is None:  # started by hand: no agent lists it in `ls workers`, so it lists itself
        presence = Presence(settings.db, spec, hostname, concurrency, settings.user, path)
        celery_signals.worker_ready.connect(presence.on_ready, weak=False)
    try:
        worker = app.Worker(
            hostname=hostname,
            concurrency=concurrency,
            pool=TaskPool,  # Celery's prefork pool, minus its sleeps at shutdown (pyfi.worker.pool)
            consumer_cls=SocketConsumer,  # a call runs its socket's current function (pyfi.worker.consumer)
            queues=spec.broker_queues or ["pyfi.idle"],
            loglevel=loglevel,
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
            optimization="fair",
        )
        worker.start()
    finally:
        if presence is not None:
            presence.stop()
        if sidecar is not None:
            sidecar.stop()  # after the pool: every record of every process is written
    code = getattr(worker, "exitcode", 0) or 0
    if code:
        raise SystemExit(code)


def leave(code: int = 0) -> NoReturn:
    """End the process without tearing down the interpreter, once the worker has stopped cleanly.

    Tearing down the modules and objects of a Celery worker takes ~0.5 s, a
    fifth of the time from ``pyfi proc stop`` to the process being gone, and
    does nothing the operating system does not do anyway. The exit functions
    (logging's, any recorder's of this process) still run, and the standard
    streams are flushed.
    """
    atexit._run_exitfuncs()  # what the interpreter's own exit would run first
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
