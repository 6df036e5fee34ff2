"""Build the Celery app from Settings: JSON only, late acks, redelivery on worker loss."""
from __future__ import annotations

from typing import Any

from pyfi.config import Settings
from pyfi.private import private_file

#: Redis/SQS redeliver unacked messages after this many seconds. Long enough
#: for ordinary calls, short enough that a call on a dead node comes back soon.
VISIBILITY_TIMEOUT = 300

#: transport option naming a worker's holder id on Redis (see pyfi.messaging.redis_transport)
HOLDER_OPTION = "pyfi_holder"
#: the database result backend, with funnels joined natively (see pyfi.messaging.chords)
CHORDS = "pyfi.messaging.chords:DatabaseBackend"


def celery_config(settings: Settings) -> dict[str, Any]:
    return {
        "broker_url": settings.broker,
        "result_backend": settings.backend,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,  # acks_late alone acks a call whose child was killed
        # How long the pool waits for a result a killed child may have sent before its call is redelivered
        # (Celery's 10 s default). The result comes over a local pipe: 3 s is ample, and redelivery comes sooner.
        "worker_lost_wait": 3.0,
        "task_acks_on_failure_or_timeout": True,
        "worker_prefetch_multiplier": 1,
        "task_create_missing_queues": True,
        "task_default_queue": "pyfi.default",
        "broker_connection_retry_on_startup": True,
        **broker_options(settings.broker),
        "result_extended": True,
        "worker_hijack_root_logger": False,
        # Celery's task events (celery events, Flower): off unless asked for (pyfi.messaging.task_events)
        "worker_send_task_events": settings.task_events,
        "task_send_sent_event": settings.task_events,
        "enable_utc": True,
    }


def broker_options(url: str) -> dict[str, Any]:
    """Per-transport settings: each transport accepts different options."""
    if url.startswith("sqla+"):
        # kombu lets a URL prefix win over broker_transport: strip it so our subclass is used
        return {
            "broker_url": url[len("sqla+"):],
            "broker_transport": "pyfi.messaging.sqla_transport:Transport",
            "broker_transport_options": {"connect_args": {"timeout": 30}},
        }
    if url.startswith("redis://"):  # a killed worker's calls are given back at once (pyfi.messaging.redis_transport)
        return {"broker_transport": "pyfi.messaging.redis_transport:Transport",
                "broker_transport_options": {"visibility_timeout": VISIBILITY_TIMEOUT}}
    if url.startswith(("redis", "rediss")):
        return {"broker_transport_options": {"visibility_timeout": VISIBILITY_TIMEOUT}}
    return {}


def sqlite_file(url: str) -> str | None:
    """The file of a SQLite broker or result backend URL (``sqla+sqlite:///...``, ``db+sqlite:///...``), if it is one."""
    scheme, sep, rest = url.partition(":///")
    if not sep or scheme.rpartition("+")[2] != "sqlite":
        return None
    path = rest.split("?", 1)[0]
    return path if path and path != ":memory:" else None


def make_app(settings: Settings, main: str = "pyfi", signer: Any = None) -> Any:
    """A fresh Celery app (import Celery lazily: the CLI's --help must not pay for it).

    ``signer`` (a :class:`pyfi.messaging.signing.Signer`) signs every call the
    app sends; workers refuse a call without a valid signature.
    """
    from celery import Celery

    from pyfi.messaging.signed_amqp import SigningAMQP
    from pyfi.messaging.task_events import SocketNamedEvents, enable

    for url in (settings.broker, settings.backend):  # the embedded default's files: its user's alone
        path = sqlite_file(url)
        if path is not None:
            private_file(path)
    app = Celery(main, set_as_current=False, amqp=SigningAMQP, events=SocketNamedEvents)
    # db+ result backends join funnels where their last call ends, never by Celery's chord_unlock (pyfi.messaging.chords)
    app.loader.override_backends = {**app.loader.override_backends, "db": CHORDS, "database": CHORDS}
    app.conf.update(celery_config(settings))
    app.conf.pyfi_signer = signer
    if settings.task_events:
        enable(app)
    return app


def keep_results_through_restarts(app: Any, backend_url: str) -> None:
    """A worker's results on a Redis backend are stored once a restarting Redis is back (Celery retries only some
    writes); a sender's check of the backend, by contrast, must say at once that it cannot be reached."""
    if backend_url.startswith(("redis://", "rediss://")):
        app.conf.result_backend_always_retry = True
        app.conf.result_backend_max_sleep_between_retries_ms = 1000
