"""The Publisher and Subscriber interfaces every transport implements."""
from __future__ import annotations

import abc
import logging
import os
import time
from typing import Any, Iterable, Iterator, Mapping, Sequence

from pyfi.errors import InvalidInput
from pyfi.messaging.pubsub.protocol import FAILURE_BACKOFF, Message, encode

log = logging.getLogger(__name__)


class Publisher(abc.ABC):
    """Publishes messages; never raises because the backend is down.

    Safe to create before a fork: connections are made lazily, per process.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._pid: int | None = None
        self._down_until = 0.0
        self._warned = False

    def publish(self, channel: str, message: Mapping[str, Any]) -> bool:
        """Send ``message`` on ``channel``; True if the backend accepted it.

        On a backend error: log a warning (once per outage), drop the message,
        and skip publishing for FAILURE_BACKOFF seconds.
        """
        return self.publish_encoded([(channel, encode(message))])

    def publish_encoded(self, items: Sequence[tuple[str, str]]) -> bool:
        """Send already-encoded ``(channel, payload)`` pairs in one write; True if the backend took them.

        The worker's sidecar publishes what the worker's processes hand it in
        batches this way. Failures as in :meth:`publish`.
        """
        if not items or time.monotonic() < self._down_until:
            return not items
        try:
            self._check_pid()
            self._send_many(items)
        except self._backend_errors() as exc:
            self._failed(exc)
            return False
        if self._warned:
            log.info("pub/sub %s reachable again", safe_url(self.url))
            self._warned = False
        return True

    def close(self) -> None:
        """Release the connection of this process (if any); never raises because the backend is down."""
        self._drop_connection()

    def __enter__(self) -> "Publisher":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _check_pid(self) -> None:
        """Forget connections inherited through fork; reconnect in this process."""
        pid = os.getpid()
        if self._pid != pid:
            self._forget()
            self._pid = pid

    def _failed(self, exc: BaseException) -> None:
        self._down_until = time.monotonic() + FAILURE_BACKOFF
        if not self._warned:
            log.warning("pub/sub %s unavailable, dropping messages: %s", safe_url(self.url), exc)
            self._warned = True
        else:
            log.debug("pub/sub still unavailable: %s", exc)
        self._drop_connection()

    def _drop_connection(self) -> None:
        """Close this process's connection, if it has one (inherited ones are only forgotten)."""
        if self._pid == os.getpid():
            try:
                self._disconnect()
            except self._backend_errors():
                log.debug("error closing pub/sub connection", exc_info=True)
        self._pid = None

    @abc.abstractmethod
    def _backend_errors(self) -> tuple[type[BaseException], ...]:
        """The exceptions meaning "backend unavailable": logged and dropped."""

    @abc.abstractmethod
    def _send_many(self, items: Sequence[tuple[str, str]]) -> None:
        """Deliver JSON payloads, ``(channel, payload)`` pairs in order, in as few writes as the transport allows."""

    @abc.abstractmethod
    def _forget(self) -> None:
        """Drop references to connections without closing them (after fork)."""

    @abc.abstractmethod
    def _disconnect(self) -> None:
        """Close this process's connection."""


class Subscriber(abc.ABC):
    """Receives messages whose channel matches one of ``patterns``.

    Only messages published after the subscriber was created are delivered.
    Use in the process that created it; raises BackendUnavailable when the
    backend cannot be reached.
    """

    def __init__(self, url: str, patterns: Iterable[str]) -> None:
        self.url = url
        self.patterns = tuple(patterns)
        if not self.patterns:
            raise InvalidInput("a subscriber needs at least one channel pattern")

    @abc.abstractmethod
    def get_message(self, timeout: float | None = None) -> Message | None:
        """The next message, waiting up to ``timeout`` seconds (None: forever)."""

    def listen(self, timeout: float | None = None) -> Iterator[Message]:
        """Yield messages as they come; stop after ``timeout`` idle seconds (None: never)."""
        while True:
            message = self.get_message(timeout)
            if message is None:
                return
            yield message

    @abc.abstractmethod
    def close(self) -> None:
        """Unsubscribe and release the connection."""

    def __enter__(self) -> "Subscriber":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def safe_url(url: str) -> str:
    """``url`` without a password, for log lines."""
    head, sep, tail = url.partition("@")
    if not sep:
        return url
    scheme, _, _creds = head.partition("://")
    return f"{scheme}://***@{tail}"


def remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


# --------------------------------------------------------------------------
# Redis


