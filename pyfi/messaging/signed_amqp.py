"""Celery's message factory, signing every call an app sends (see :mod:`pyfi.messaging.signing`)."""
from __future__ import annotations

from typing import Any, Mapping

from celery.app.amqp import AMQP

from pyfi.messaging.signing import KEY_HEADER, SIG_HEADER, Signer


class SigningAMQP(AMQP):
    """Celery's message factory, signing each call with the app's ``pyfi_signer`` (none: unsigned).

    A signature of an earlier message in the options' headers (a retry copies
    its call's headers) is replaced: each message is signed by its sender.
    """

    def as_task_v2(self, task_id: str, name: str, args: Any = None, kwargs: Any = None, *more: Any,
                   **options: Any) -> Any:
        message = super().as_task_v2(task_id, name, args, kwargs, *more, **options)
        signer: Signer | None = self.app.conf.get("pyfi_signer")
        extra = options.get("headers")
        if extra:
            extra.pop(KEY_HEADER, None)
            extra.pop(SIG_HEADER, None)
        if signer is not None:
            headers = message.headers
            embed = message.body[2]  # (args, kwargs, embed): the calls Celery sends once this one ends
            signer.sign(headers if not extra else _Merged(headers, extra), args or (), kwargs or {}, embed)
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
