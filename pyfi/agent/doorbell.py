"""Wake the agents when a processor's requested state changes, instead of at their next tick.

``pyfi proc start|stop|pause|...`` commits the request, then rings: one
pub/sub message on :data:`CHANNEL`. Every agent sleeps between reconciles on
its :class:`Doorbell`, which returns as soon as a ring arrives. A ring is a
hint, never the request itself: the database stays the one source of truth,
and an agent that misses a ring (pub/sub down, a message dropped) still
reconciles at its next tick.
"""
from __future__ import annotations

import logging
import time
from typing import Any

from pyfi.errors import BackendUnavailable, PyfiError
from pyfi.messaging.pubsub import publisher_for, subscriber_for

log = logging.getLogger("pyfi.agent")

#: not of the form <queue>.<processor>.<channel>, so `pyfi listen` patterns do not see it
CHANNEL = "pyfi-control.agents"
#: seconds between attempts to subscribe while the pub/sub backend is unavailable
RESUBSCRIBE = 5.0


def ring(pubsub_url: str, processor: str, namespace: str = "") -> bool:
    """Tell every agent of the network (``namespace``) to reconcile now; True if the pub/sub backend took the message.

    Never raises: the request is committed already, and agents see it at their next tick anyway.
    """
    try:
        publisher = publisher_for(pubsub_url, namespace)
    except PyfiError as exc:
        log.warning("cannot ring the agents (%s); they see the request at their next tick", exc)
        return False
    try:
        return publisher.publish(CHANNEL, {"processor": processor})
    finally:
        publisher.close()


class Doorbell:
    """What an agent sleeps on: a timeout that a ring cuts short."""

    def __init__(self, pubsub_url: str, namespace: str = "") -> None:
        self.url, self.namespace = pubsub_url, namespace
        self._subscriber: Any = None  # a (network) Subscriber
        self._retry_at = 0.0

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds; True if woken by a ring."""
        subscriber = self._subscribed()
        if subscriber is None:
            time.sleep(timeout)
            return False
        try:
            if subscriber.get_message(timeout) is None:
                return False
            while subscriber.get_message(0) is not None:  # rings that came together wake once
                pass
            return True
        except BackendUnavailable as exc:
            log.warning("agent doorbell: %s; reconciling on the tick only", exc)
            self.close()
            return False

    def close(self) -> None:
        if self._subscriber is not None:
            try:
                self._subscriber.close()
            except Exception:  # noqa: BLE001 - a broken connection may fail to close; it is dropped either way
                pass
            self._subscriber = None
            self._retry_at = time.monotonic() + RESUBSCRIBE

    def _subscribed(self) -> Any:
        if self._subscriber is None and time.monotonic() >= self._retry_at:
            try:
                self._subscriber = subscriber_for(self.url, CHANNEL, self.namespace)
            except BackendUnavailable as exc:
                log.warning("agent doorbell: %s; retrying in %.0f s", exc, RESUBSCRIBE)
                self._retry_at = time.monotonic() + RESUBSCRIBE
        return self._subscriber
