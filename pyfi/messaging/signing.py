"""Signed calls: every call carries who sent it, in a form its worker can check.

Anyone who can reach the broker can put a message on a socket's queue. So
every call pyfi sends carries its sender's signature: a pyfi user's key (the
CLI, the Python client) or, for the calls a worker sends itself (along a
plug, a workflow's next step, a retry), its processor's. A worker checks it
before the call runs (:mod:`pyfi.worker.gate`).

Every key has a secret half (32 random bytes, :func:`new_key_pair`) that only
the database owner and the key's user can read. A call to processor P is
signed with HMAC-SHA256 under the key's **call key for P**,
``sha256(sha256("pyfi-calls\\n" + secret) + P's id)``: P's workers get the
call keys of every sender for P, and only for P, from the database
(``pyfi_call_key()``, migration 0013), so they can check calls to them
without being able to sign a call to any other processor; whatever P's own
code could take from its worker lets it forge only calls to P itself. The
signature covers everything in the message that makes a worker do something
and says as whom: the key, the call's id, task, processor, socket, plug,
flow, parent and group, and a digest of its arguments and of its body's
*embed* (the calls Celery sends once it ends: a workflow's next steps, its
callbacks and errbacks, a funnel's last call), so no step can be added to a
captured call. It costs a sender and a worker a few microseconds a call
(``bench/README.md``).

The key's public half (Ed25519) signs what a worker publishes on pub/sub,
once per batch (:mod:`pyfi.messaging.pubsub.network`); ``pyfi listen``
checks it with the public half, which every user may read.

The signature goes in two headers (:data:`KEY_HEADER`, :data:`SIG_HEADER`),
added by the sending app's :class:`pyfi.messaging.signed_amqp.SigningAMQP`
to every message it creates: ``send_task``, a signature's ``apply_async``,
and what Celery sends for a worker (a chain's next step, a retry).
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from kombu.utils import json as kombu_json

from pyfi.messaging.routing import PLUG_HEADER, PROCESSOR_HEADER, SOCKET_HEADER, TASKPARENT_HEADER

KEY_HEADER, SIG_HEADER = "pyfi_key", "pyfi_sig"
#: Celery's headers the signature covers: what a call is, its flow and its group (a funnel joins by it)
CELERY_HEADERS = ("id", "task", "root_id", "parent_id", "group", "group_index")
#: pyfi's headers the signature covers
SIGNED_HEADERS = (PROCESSOR_HEADER, SOCKET_HEADER, PLUG_HEADER, TASKPARENT_HEADER)
VERSION = "pyfi-call-3"
CALLS = b"pyfi-calls\n"


def new_key_pair() -> tuple[str, str]:
    """A fresh key: (secret half, public half), each as hex (an Ed25519 key and its public key)."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()).hex()
    return private, key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def call_key(secret: str, processor_id: str) -> bytes:
    """A key's call key for one processor (as the database's ``pyfi_call_key()`` computes it)."""
    master = hashlib.sha256(CALLS + bytes.fromhex(secret)).digest()
    return hashlib.sha256(master + processor_id.encode()).digest()


def signed_content(key_id: str, headers: Mapping[str, Any], args: Any, kwargs: Any,
                   embed: Mapping[str, Any] | None = None) -> bytes:
    """What a call's signature covers, as bytes (the same on the sending and the checking side).

    The arguments and the embed (the body's third part: ``chain``,
    ``callbacks``, ``errbacks``, ``chord`` and whatever else it holds) are
    taken as their JSON text, which a JSON round trip through the broker
    leaves as it was (a tuple is sent as a list). An embed's empty entries
    count as absent, as they do for Celery.
    """
    embed = embed or {}
    body = kombu_json.dumps([list(args or ()), kwargs or {}, {key: embed[key] for key in sorted(embed) if embed[key]}])
    fields = [VERSION, key_id, *(headers.get(name) for name in CELERY_HEADERS),
              *(headers.get(name) for name in SIGNED_HEADERS), hashlib.sha256(body.encode()).hexdigest()]
    return "\n".join("" if value is None else str(value) for value in fields).encode()


def call_signature(key: bytes, content: bytes) -> str:
    return hmac.new(key, content, hashlib.sha256).hexdigest()


def valid_call_signature(key: bytes, signature: str, content: bytes) -> bool:
    """True when ``signature`` is the call key's over ``content``."""
    return hmac.compare_digest(call_signature(key, content), signature)


@dataclass(frozen=True)
class Signer:
    """Signs with one key: ``key_id`` names it in the database, ``private_key`` is its secret half (hex)."""

    key_id: str
    private_key: str
    _call_keys: dict[str, bytes] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_key", Ed25519PrivateKey.from_private_bytes(bytes.fromhex(self.private_key)))

    def sign(self, headers: dict[str, Any], args: Any, kwargs: Any, embed: Mapping[str, Any] | None = None) -> None:
        """Add the key and the signature to a call's ``headers`` (its id, task and pyfi headers, the processor's
        among them: a call named for no processor cannot be signed, and no worker runs it)."""
        processor_id = headers.get(PROCESSOR_HEADER)
        if not processor_id:
            return
        key = self._call_keys.get(processor_id)
        if key is None:
            key = self._call_keys[processor_id] = call_key(self.private_key, processor_id)
        headers[KEY_HEADER] = self.key_id
        headers[SIG_HEADER] = call_signature(key, signed_content(self.key_id, headers, args, kwargs, embed))

    def sign_bytes(self, content: bytes) -> str:
        """The Ed25519 signature of ``content``, as hex (what a worker publishes)."""
        return self._key.sign(content).hex()  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"Signer(key_id={self.key_id!r})"  # never the secret half


def valid_signature(public_key: str, signature: str, content: bytes) -> bool:
    """True when ``signature`` (hex) is ``public_key``'s (hex) Ed25519 signature over ``content``."""
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key)).verify(bytes.fromhex(signature), content)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True
