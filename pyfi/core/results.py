"""A call's result, read back from the Celery result backend.

The backend is read with the app's ``result_accept_content`` (JSON only):
a payload in any other format (pickle included) is refused by kombu, never
deserialized. A failed call's stored exception is reported as its type and
message, not rebuilt.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyfi.config import Settings
from pyfi.errors import BackendUnavailable


@dataclass(frozen=True)
class StoredResult:
    state: str  # Celery's: SUCCESS, FAILURE, PENDING (unknown or expired), ...
    value: Any

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "value": self.value}


def read_result(settings: Settings, call_id: str) -> StoredResult:
    """The stored result of ``call_id`` (state PENDING when the backend has none)."""
    from kombu.exceptions import ContentDisallowed

    from pyfi.messaging.app import make_app

    backend = make_app(settings).backend
    try:
        meta = backend.get_task_meta(call_id)
    except ContentDisallowed as exc:
        return StoredResult("UNREADABLE", f"not JSON, refused: {exc}")
    except Exception as exc:  # noqa: BLE001 - any client error: the backend is unreachable or misconfigured
        raise BackendUnavailable(f"result backend unavailable: {type(exc).__name__}: {exc}",
                                 "check --backend, PYFI_BACKEND or the ini file") from exc
    state, value = str(meta.get("status", "PENDING")), meta.get("result")
    if isinstance(value, BaseException):
        value = {"type": type(value).__name__, "message": _message(value)}
    return StoredResult(state, value)


def _message(exc: BaseException) -> str:
    args = exc.args
    return str(args[0]) if len(args) == 1 else str(exc)
