"""A call's result, read back from the Celery result backend, and the check
that the broker and the backend answer before a call is sent.

The backend is read with the app's ``result_accept_content`` (JSON only):
a payload in any other format (pickle included) is refused by kombu, never
deserialized. A failed call's stored exception is reported as its type and
message, not rebuilt.

Every front end (CLI, client) builds its sending app with ``checked_app``:
a call sent to a broker that is down fails with a kombu error named like a
database error, and a call sent while the result backend is unreachable is
lost to its sender, so both are tried first and reported by their URI.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from pyfi.config import SOURCES, Settings
from pyfi.errors import BackendUnavailable
from pyfi.masking import mask_url

#: a failure to *build* the broker or backend client: the URI is wrong, not the server
SETUP_ERRORS = (LookupError, ImportError, ValueError)
#: a quick verdict: kombu's default retries a refused broker for seconds
BROKER_RETRIES = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}


@dataclass(frozen=True)
class StoredResult:
    state: str  # Celery's: SUCCESS, FAILURE, PENDING (unknown or expired), ...
    value: Any

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "value": self.value}


def read_result(settings: Settings, call_id: str, app: Any = None) -> StoredResult:
    """The stored result of ``call_id`` (state PENDING when the backend has none); ``app``: a Celery app to reuse."""
    from kombu.exceptions import ContentDisallowed

    from pyfi.messaging.app import make_app

    try:
        meta = (app or make_app(settings)).backend.get_task_meta(call_id)
    except ContentDisallowed as exc:
        return StoredResult("UNREADABLE", f"not JSON, refused: {exc}")
    except Exception as exc:  # noqa: BLE001 - any client error: the backend is unreachable or misconfigured
        raise unavailable(settings, "backend", exc) from exc
    state, value = str(meta.get("status", "PENDING")), meta.get("result")
    if isinstance(value, BaseException):
        value = {"type": type(value).__name__, "message": _message(value)}
    return StoredResult(state, value)


def checked_app(settings: Settings, main: str = "pyfi", signer: Any = None) -> Any:
    """A Celery app whose result backend and broker both answer; BackendUnavailable names the one that does not.

    ``signer`` signs the calls it sends (:func:`pyfi.core.keys.user_signer`): workers run no others.
    """
    from pyfi.messaging.app import make_app

    app = make_app(settings, main=main, signer=signer)
    check_backend(app, settings)
    check_broker(app, settings)
    return app


def check_backend(app: Any, settings: Settings) -> None:
    """Read the result of an id no call has: any answer (PENDING) proves the backend is usable."""
    try:
        app.backend.get_task_meta(f"pyfi-probe-{uuid.uuid4()}")
    except Exception as exc:  # noqa: BLE001 - every client library raises its own errors
        raise unavailable(settings, "backend", exc) from exc


def check_broker(app: Any, settings: Settings) -> None:
    """Open (and close) one broker connection."""
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(**BROKER_RETRIES)
    except Exception as exc:  # noqa: BLE001 - every transport raises its own errors
        raise unavailable(settings, "broker", exc) from exc


def unavailable(settings: Settings, which: str, exc: BaseException) -> BackendUnavailable:
    """The error for the broker or backend (``which``): its URI, masked, and where to fix it."""
    env_var, section, key = SOURCES[which]
    where = f"--{which}, {env_var} or [{section}] {key} in the ini file"  # every place the URI may come from
    uri = mask_url(getattr(settings, which))
    if _is_setup_error(exc):
        return BackendUnavailable(f"{which} {uri} cannot be used: {_first_line(exc)}",
                                  f"fix {where}, or install the client library for its scheme")
    return BackendUnavailable(f"{which} {uri} is unavailable: {_first_line(exc)}",
                              f"check that the server is running, or fix {where}")


def _is_setup_error(exc: BaseException) -> bool:
    from celery.exceptions import ImproperlyConfigured

    return isinstance(exc, (*SETUP_ERRORS, ImproperlyConfigured))


def _first_line(exc: BaseException) -> str:
    text = str(exc.args[0] if isinstance(exc, KeyError) and exc.args else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _message(exc: BaseException) -> str:
    args = exc.args
    return str(args[0]) if len(args) == 1 else str(exc)
