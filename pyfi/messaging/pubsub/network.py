"""A network's pub/sub: its channels namespaced, its workers' messages signed.

Anyone who reaches the pub/sub server can publish on it (``redis-cli
publish``), and Redis pub/sub is server-wide. So:

- every channel of a network is prefixed with its namespace
  (:func:`pyfi.core.network.namespace`); publishers add it, subscribers
  subscribe under it and take it off what they deliver;
- a worker signs what it publishes with its processor's key: the messages
  of one channel that one flush sends travel as one envelope,
  ``{"pyfi": "signed-2", "key": ..., "sig": ..., "time": ..., "nonce": ...,
  "messages": "[...]"}``, whose signature covers the channel, the time it
  was sealed (epoch seconds), a nonce (16 random bytes, new for every
  envelope) and the messages' JSON text. ``pyfi listen`` shows a message
  only when its envelope is signed by the key of the processor whose
  channel it came on, was sealed at most :data:`MAX_AGE` seconds before or
  after the listener's clock (clocks of different hosts may differ that
  much), and carries a nonce that listener has not seen
  (:class:`pyfi.core.listening.Verifier`): an envelope captured and
  published again is not shown twice, nor once it is older than that.
  One signature per channel and flush, not per message: the sidecar
  publishes at most every 100 ms.

The doorbell that wakes agents is namespaced, not signed: a ring is only a
hint to look at the database now.
"""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from pyfi.messaging.pubsub.base import Publisher, Subscriber
from pyfi.messaging.pubsub.protocol import Message, encode

ENVELOPE = "signed-2"
_PREFIX = b"pyfi-pubsub-2\n"
#: seconds an envelope may be older (or, clocks differing, younger) than a listener's clock and still be shown
MAX_AGE = 60.0


@dataclass(frozen=True)
class Envelope:
    """What a listener reads of an envelope: who sealed it, when, its nonce, and its messages' JSON text."""

    key: str
    sig: str
    time: float
    nonce: str
    messages: str


def signed_bytes(channel: str, messages: str, sealed: float, nonce: str) -> bytes:
    """What an envelope's signature covers: its (namespaced) channel, time, nonce and messages' JSON text."""
    return b"\n".join([_PREFIX + channel.encode(), repr(sealed).encode(), nonce.encode(), messages.encode()])


def seal(signer: Any, channel: str, payloads: Sequence[str], sealed: float | None = None) -> str:
    """One envelope holding ``payloads`` (JSON texts), signed for ``channel`` by ``signer``'s key, sealed now."""
    messages = "[" + ",".join(payloads) + "]"
    sealed, nonce = time.time() if sealed is None else sealed, secrets.token_hex(16)
    signature = signer.sign_bytes(signed_bytes(channel, messages, sealed, nonce))
    return encode({"pyfi": ENVELOPE, "key": signer.key_id, "sig": signature, "time": sealed, "nonce": nonce,
                   "messages": messages})


def opened(data: Any) -> Envelope | None:
    """The envelope ``data`` is; None for anything else."""
    if not isinstance(data, Mapping) or data.get("pyfi") != ENVELOPE:
        return None
    key, sig, sealed, nonce, messages = (data.get(k) for k in ("key", "sig", "time", "nonce", "messages"))
    if not all(isinstance(value, str) for value in (key, sig, nonce, messages)):
        return None
    if not isinstance(sealed, float):
        return None
    return Envelope(key, sig, sealed, nonce, messages)


class NetworkPublisher:
    """A publisher for one network: channels under its namespace, messages sealed when it has a signer."""

    def __init__(self, inner: Publisher, namespace: str = "", signer: Any = None) -> None:
        self.inner, self.namespace, self.signer = inner, namespace, signer

    def publish(self, channel: str, message: Mapping[str, Any]) -> bool:
        return self.publish_encoded([(channel, encode(message))])

    def publish_encoded(self, items: Sequence[tuple[str, str]]) -> bool:
        """``(channel, payload)`` pairs in one write: one envelope per channel (in order of first appearance)."""
        if self.signer is None:
            return self.inner.publish_encoded([(self.namespace + channel, payload) for channel, payload in items])
        by_channel: dict[str, list[str]] = {}
        for channel, payload in items:
            by_channel.setdefault(self.namespace + channel, []).append(payload)
        return self.inner.publish_encoded([(channel, seal(self.signer, channel, payloads))
                                           for channel, payloads in by_channel.items()])

    def close(self) -> None:
        self.inner.close()

    def __enter__(self) -> "NetworkPublisher":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class NetworkSubscriber(Subscriber):
    """A subscriber for one network: patterns under its namespace, which what it delivers no longer shows."""

    def __init__(self, inner: Subscriber, namespace: str = "") -> None:
        super().__init__(inner.url, inner.patterns)
        self.inner, self.namespace = inner, namespace

    def get_message(self, timeout: float | None = None) -> Message | None:
        message = self.inner.get_message(timeout)
        if message is None:
            return None
        return Message(self._local(message.pattern), self._local(message.channel), message.data)

    def close(self) -> None:
        self.inner.close()

    def _local(self, name: str) -> str:
        return name[len(self.namespace):] if name.startswith(self.namespace) else name
