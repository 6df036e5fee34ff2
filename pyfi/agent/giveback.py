"""Giving back the calls a dead worker held, at once rather than after the broker's visibility timeout.

On Redis kombu gives a dead consumer's unacknowledged calls back only after
the visibility timeout; pyfi's Redis transport notes which worker holds which
call (:mod:`pyfi.messaging.redis_transport`), so the agent that sees one of
its workers die puts back exactly what it held. The embedded broker gives
them to the next consumer by itself, RabbitMQ when the connection drops.
(The pool processes of a killed worker die with it: Celery has the kernel
kill them when their parent dies, so none finishes a call given back.)
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pyfi.config import Settings
from pyfi.messaging.app import VISIBILITY_TIMEOUT, make_app

log = logging.getLogger("pyfi.agent")


def give_back_calls(settings: Settings, celery_config: str | None, handle: Any, node: str | None = None) -> None:
    """Put the calls the dead worker of ``handle`` (of the agent of ``node``) held back at the front of their queues.

    ``celery_config``: the workers' ``--celery-config`` (their transport
    options, a ``global_keyprefix`` say, name the keys to look at).
    """
    if not settings.broker.startswith("redis://"):
        return
    from kombu.exceptions import KombuError
    from redis.exceptions import RedisError

    from pyfi.messaging.redis_transport import give_back  # (kombu's Redis transport: only agents that need it)
    from pyfi.worker.main import holder_of

    app = make_app(settings)
    if celery_config:
        from pyfi.worker.main import WorkerOptions, apply_options

        apply_options(app, WorkerOptions(celery_config=celery_config))
    try:
        with app.connection_for_write() as connection:
            give_back(connection, holder_of(node, Path(handle.run_dir).name), f"of {handle.processor} (pid {handle.pid})")
    except (OSError, RedisError, KombuError) as exc:  # the visibility timeout still gives them back, later
        log.warning("cannot give back the calls of %s's dead worker %d now (the broker will, within %d s): %s",
                    handle.processor, handle.pid, VISIBILITY_TIMEOUT, exc)
