"""Signed calls: every call carries who sent it, in a form a worker can check.

Anyone who can reach the broker can put a message on a socket's queue. So
every call pyfi sends is signed (Ed25519) by its sender's key: a pyfi user's
(the CLI, the Python client) or, for the calls a worker sends itself (along
a plug, a workflow's next step, a retry), its processor's. The signature
covers what decides what runs and as whom: the key, the call's id, task,
socket, plug, flow and parent, and a digest of its arguments. A worker
checks it before the call runs (:mod:`pyfi.worker.gate`); the database
holds every key's public half, and a private half only its owner can read.

Why Ed25519 and not a shared secret: a worker must check calls without
holding anything that could sign one, since the code it runs could read it.
Signing costs a sender about 0.02-0.03 ms a call and checking costs a
worker about 0.05 ms (bench/README.md).

The signature goes in two headers (:data:`KEY_HEADER`, :data:`SIG_HEADER`),
added by the sending app's :class:`pyfi.messaging.signed_amqp.SigningAMQP`
to every message it creates: ``send_task``, a signature's ``apply_async``,
and what Celery sends for a worker (a chain's next step, a retry). The same
keys sign a worker's pub/sub messages (:mod:`pyfi.messaging.pubsub.network`).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from kombu.utils import json as kombu_json

KEY_HEADER, SIG_HEADER = "pyfi_key", "pyfi_sig"
#: headers the signature covers besides Celery's own id, task, root_id and parent_id
SIGNED_HEADERS = ("pyfi_socket", "pyfi_plug", "pyfi_taskparent")
VERSION = "pyfi-call-1"


def new_key_pair() -> tuple[str, str]:
    """A fresh Ed25519 key: (private half, public half), each as hex."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()).hex()
    return private, key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def signed_content(key_id: str, headers: Mapping[str, Any], args: Any, kwargs: Any) -> bytes:
    """What a call's signature covers, as bytes (the same on the sending and the checking side).

    The arguments are taken as their JSON text, which a JSON round trip
    through the broker leaves as it was (a tuple is sent as a list).
    """
    arguments = hashlib.sha256(kombu_json.dumps([list(args or ()), kwargs or {}]).encode()).hexdigest()
    fields = [VERSION, key_id, headers.get("id"), headers.get("task"), headers.get("root_id"),
              headers.get("parent_id"), *(headers.get(name) for name in SIGNED_HEADERS), arguments]
    return "\n".join("" if field is None else str(field) for field in fields).encode()


@dataclass(frozen=True)
class Signer:
    """Signs calls with one key: ``key_id`` names it in the database, ``private_key`` is its private half (hex)."""

    key_id: str
    private_key: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "_key", Ed25519PrivateKey.from_private_bytes(bytes.fromhex(self.private_key)))

    def sign(self, headers: dict[str, Any], args: Any, kwargs: Any) -> None:
        """Add the key and the signature to a call's ``headers`` (which must hold its id, task and pyfi headers)."""
        headers[KEY_HEADER] = self.key_id
        headers[SIG_HEADER] = self.sign_bytes(signed_content(self.key_id, headers, args, kwargs))

    def sign_bytes(self, content: bytes) -> str:
        """The signature of ``content``, as hex."""
        return self._key.sign(content).hex()  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"Signer(key_id={self.key_id!r})"  # never the private half


def valid_signature(public_key: str, signature: str, content: bytes) -> bool:
    """True when ``signature`` (hex) is ``public_key``'s (hex) over ``content``."""
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key)).verify(bytes.fromhex(signature), content)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True
