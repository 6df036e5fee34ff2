"""Celery's message factory, signing every call an app sends (see :mod:`pyfi.messaging.signing`)."""
from __future__ import annotations

from typing import Any, Mapping

from celery.app.amqp import AMQP

from pyfi.messaging.signing import KEY_HEADER, SIG_HEADER, Signer


class SigningAMQP(AMQP):
    """Celery's message factory, signing each call with the app's ``pyfi_signer`` (none: unsigned).

    Each new call is signed by its sender, whatever signature the options'
    headers hold. A retry (Celery's ``retries`` above 0: the same call sent
    again, its id, arguments and embed unchanged, its headers copied) keeps
    the signature of its call: it goes as its sender signed it, so its
    worker checks that sender's right again, never the retrying processor's.
    Its parent is its call's (Celery would name the call itself when it has
    none).
    """

    def as_task_v2(self, task_id: str, name: str, args: Any = None, kwargs: Any = None, *more: Any,
                   **options: Any) -> Any:
        message = super().as_task_v2(task_id, name, args, kwargs, *more, **options)
        extra = options.get("headers")
        if message.headers.get("retries"):
            if message.headers.get("parent_id") == task_id:  # Celery names a call with no parent its retry's parent
                message.headers["parent_id"] = None
            if extra and extra.get(KEY_HEADER) and extra.get(SIG_HEADER):
                return message  # its call's own signature travels in the copied headers
        if extra:
            extra.pop(KEY_HEADER, None)
            extra.pop(SIG_HEADER, None)
        signer: Signer | None = self.app.conf.get("pyfi_signer")
        if signer is not None:
            embed = message.body[2]  # (args, kwargs, embed): the calls Celery sends once this one ends
            signer.sign(message.headers if not extra else _Merged(message.headers, extra), args or (), kwargs or {},
                        embed)
        return message


class _Merged(dict):
    """The message's headers as the broker will carry them (the options' headers merged in later), for signing.

    Writes go to the message's own headers.
    """

    def __init__(self, headers: dict[str, Any], extra: Mapping[str, Any]) -> None:
        super().__init__({**headers, **extra})
        self.target = headers

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self.target[key] = value
