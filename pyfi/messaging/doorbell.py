"""Wake the agents (or the schedulers) when what they act on changes, instead of at their next tick.

``pyfi proc start|stop|pause|...`` commits the request, then rings: one
pub/sub message on :data:`AGENTS`. Every agent sleeps between reconciles on
its :class:`Doorbell`, which returns as soon as a ring arrives. Schedulers
sleep between placement rounds on :data:`SCHEDULERS`, which ``pyfi scheduler
... add|remove`` and ``pyfi node cordon|uncordon|drain`` ring. A ring is a
hint, never the request itself: the database stays the one source of truth,
and a process that misses a ring (pub/sub down, a message dropped) still
acts at its next tick.
"""
from __future__ import annotations

import logging
import time
from typing import Any

from pyfi.errors import BackendUnavailable, PyfiError
from pyfi.messaging.pubsub import publisher_for, subscriber_for

log = logging.getLogger("pyfi.doorbell")

#: the agents' doorbell; not of the form <queue>.<processor>.<channel>, so `pyfi listen` patterns do not see it
AGENTS = "pyfi-control.agents"
#: the schedulers' doorbell
SCHEDULERS = "pyfi-control.schedulers"
#: seconds between attempts to subscribe while the pub/sub backend is unavailable
RESUBSCRIBE = 5.0


def ring(pubsub_url: str, processor: str, namespace: str = "", channel: str = AGENTS) -> bool:
    """Tell every agent (or scheduler: ``channel``) of the network (``namespace``) to act now; True if the pub/sub
    backend took the message.

    Never raises: the request is committed already, and they see it at their next tick anyway.
    """
    try:
        publisher = publisher_for(pubsub_url, namespace)
    except PyfiError as exc:
        log.warning("cannot ring %s (%s); they see the change at their next tick", channel, exc)
        return False
    try:
        return publisher.publish(channel, {"processor": processor})
    finally:
        publisher.close()


class Doorbell:
    """What an agent or scheduler sleeps on: a timeout that a ring cuts short."""

    def __init__(self, pubsub_url: str, namespace: str = "", channel: str = AGENTS) -> None:
        self.url, self.namespace, self.channel = pubsub_url, namespace, channel
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
            log.warning("doorbell %s: %s; acting on the tick only", self.channel, exc)
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
                self._subscriber = subscriber_for(self.url, self.channel, self.namespace)
            except BackendUnavailable as exc:
                log.warning("doorbell %s: %s; retrying in %.0f s", self.channel, exc, RESUBSCRIBE)
                self._retry_at = time.monotonic() + RESUBSCRIBE
        return self._subscriber
