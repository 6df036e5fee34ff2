"""The gate: a worker runs a call only when its sender is known and may run it.

Checked in the worker's parent process, for every message, before Celery
looks at it (:class:`pyfi.worker.consumer.SocketConsumer`):

1. the message names a task of one of the worker's sockets, never one of
   Celery's own (``celery.chord_unlock`` included: funnels are joined where
   their last call ends, :mod:`pyfi.messaging.chords`);
2. it is for this worker's processor and signed (:mod:`pyfi.messaging.signing`)
   with a key the database knows, under that key's call key for the processor,
   unchanged since: its pyfi headers, its arguments and the calls its body
   embeds (a workflow's next steps, callbacks, errbacks, a funnel's last call);
3. the key's owner may run it: a user holding RUN_TASK, or a processor's
   key whose owner does (a processor's own calls to its own sockets always
   pass). A retry carries its call's signature, as its sender signed it
   (:mod:`pyfi.messaging.signed_amqp`), so it is checked against that
   sender again.

Before any of this, the headers the gate reads must be what pyfi sends
(:func:`malformed`: text of at most :data:`MAX_HEADER` characters with no
control character, or absent): a list, a mapping or a huge string is
refused at once. A call that passes carries its sender, as checked, to the
records (:data:`SENDER_HEADER`, set here whatever the message said). One
that does not is acknowledged without running and recorded and published
as ``refused``, with the reason; the log says why in one line, never the
message's body. Only an error of the database itself (down, locked, a
login or schema it refuses) puts a call back in its queue, to be checked
once the database answers; any other error in checking a message refuses
it.

Keys and rights are cached for :data:`TTL` seconds: a revoked right, a
deleted user or a new password stops their calls within that time. A call
held until its time (a retry's countdown) is checked again when it is due
(:meth:`Gate.readmit`), so it too is refused once its sender may no longer
run it.
"""
from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Any, Callable

from pyfi.messaging.routing import PROCESSOR_HEADER
from pyfi.messaging.signing import CELERY_HEADERS, KEY_HEADER, SIG_HEADER, SIGNED_HEADERS, signed_content, \
    valid_call_signature
from pyfi.worker.rows import OUTAGE

log = logging.getLogger("pyfi.worker")

#: seconds a worker trusts what it read of a key or a user's rights
TTL = 1.0
#: set on an admitted call by the gate: who sent it (the records read it; a sender's own value is overwritten)
SENDER_HEADER = "pyfi_sent_by"
RUN_TASK = "RUN_TASK"
#: the longest header the gate reads (ids, task names and keys are far shorter)
MAX_HEADER = 255
#: the headers the gate reads, each text or absent (the call's id and task are never absent)
TEXT_HEADERS = (*(name for name in CELERY_HEADERS if name != "group_index"), *SIGNED_HEADERS, KEY_HEADER, SIG_HEADER)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Refusal:
    """Why a call does not run."""

    reason: str
    sender: str | None = None


class Gate:
    """Admits or refuses each call of one worker (see the module docstring)."""

    def __init__(self, db_url: str, processor_id: str, socket_ids: set[str], task_names: set[str],
                 on_refused: Callable[[Any, Refusal], None] | None = None, ttl: float = TTL,
                 cancellations: Any = None, on_cancelled: Callable[[Any, Any], None] | None = None) -> None:
        self.db_url, self.processor_id = db_url, processor_id
        self.cancellations, self.on_cancelled = cancellations, on_cancelled  # pyfi.worker.cancels
        self.socket_ids = frozenset(socket_ids)
        self.allowed = frozenset(task_names)
        self.on_refused = on_refused
        self.ttl = ttl
        self._keys: dict[str, tuple[float, Any]] = {}
        self._call_keys: dict[str, tuple[float, Any]] = {}
        self._rights: dict[str, tuple[float, Any]] = {}

    def admit(self, message: Any) -> bool:
        """True when the call may run (its sender noted in its headers); else it is refused and acknowledged.

        A call whose sender cannot be looked up (the database is down and
        the key was never seen) goes back to its queue, after a pause. A
        cancelled call is acknowledged and dropped.
        """
        return not self._dropped(message) and self._decide(message, self.check)

    def readmit(self, message: Any) -> bool:
        """:meth:`admit` for a call admitted earlier and held until its time: is its sender still allowed?"""
        return not self._dropped(message) and self._decide(message, self.recheck)

    def _dropped(self, message: Any) -> bool:
        """A cancelled call (``pyfi task cancel``): acknowledged without running, and recorded so."""
        headers = message.headers
        found = self.cancellations.get(headers.get("id")) if self.cancellations and isinstance(headers, dict) else None
        if found is None:
            return False
        log.info("dropped cancelled call %s (cancelled by %s)", found.call_id, found.by)
        message.ack()
        if self.on_cancelled is not None:
            try:
                self.on_cancelled(message, found)
            except Exception:  # noqa: BLE001 - recording it must not stop the worker
                log.exception("recording a cancelled call failed")
        return True

    def _decide(self, message: Any, check: Callable[[Any, dict[str, Any]], Refusal | None]) -> bool:
        headers = message.headers
        try:
            if not isinstance(headers, dict):
                refusal: Refusal | None = Refusal("no headers")
            else:
                refusal = self._malformed(headers) or check(message, headers)
        except Exception as exc:  # noqa: BLE001 - the database, or what the message holds
            if not backend_error(exc):
                refusal = Refusal(f"the call cannot be checked ({type(exc).__name__}: {_first_line(exc)})")
            else:  # the database is away: the call waits for it
                log.warning("cannot check call %s now (%s); it goes back to its queue", _short(headers, "id"),
                            _first_line(exc))
                time.sleep(0.5)
                message.reject(requeue=True)
                return False
        if refusal is None:
            return True
        log.warning("refused call %s of %s: %s", _short(headers, "id"), _short(headers, "task"), refusal.reason)
        message.ack()
        if self.on_refused is not None:
            try:
                self.on_refused(message, refusal)
            except Exception:  # noqa: BLE001 - recording a refusal must not stop the worker
                log.exception("recording the refusal of a call failed")
        return False

    @staticmethod
    def _malformed(headers: dict[str, Any]) -> Refusal | None:
        reason = malformed(headers)
        return Refusal(f"the call's headers are not pyfi's: {reason}") if reason else None

    def check(self, message: Any, headers: dict[str, Any]) -> Refusal | None:
        """None when the call may run; the reason it may not otherwise (its headers are well formed)."""
        if not self.serves(headers.get("task"), headers.get("pyfi_socket")):
            return Refusal(f"{headers.get('task')!r} is not a task of this worker's sockets")
        key_id, signature = headers.get(KEY_HEADER), headers.get(SIG_HEADER)
        if not isinstance(key_id, str) or not isinstance(signature, str):
            return Refusal("the call is not signed (send it with pyfi: the CLI, the client or a plug)")
        if headers.get(PROCESSOR_HEADER) != self.processor_id:
            return Refusal("the call is for another processor (its socket was moved since it was sent?)")
        owner, key = self.key(key_id), self.call_key(key_id)
        if owner is None or key is None:
            return Refusal(f"the call is signed with a key the network does not know ({key_id[:36]})")
        body = _body(message)
        if body is None:
            return Refusal("the call's body cannot be read", owner.sender)
        if not valid_call_signature(key, signature, signed_content(key_id, headers, *body)):
            return Refusal("the call's signature does not match it (changed after it was signed)", owner.sender)
        return self.authority(owner, headers)

    def recheck(self, message: Any, headers: dict[str, Any]) -> Refusal | None:
        """None when the sender of a call :meth:`check` admitted may still run it; the reason it may not otherwise."""
        owner = self.key(headers[KEY_HEADER])
        if owner is None:
            return Refusal("the call is signed with a key the network no longer knows")
        return self.authority(owner, headers)

    def authority(self, owner: Any, headers: dict[str, Any]) -> Refusal | None:
        """None when the key's owner may run the call (noted in its headers); the reason it may not otherwise."""
        if owner.processor_id != self.processor_id and not self.may_run(owner.authority):
            return Refusal(f"user {owner.authority!r} lacks the right RUN_TASK", owner.sender)
        headers[SENDER_HEADER] = owner.sender
        return None

    def serves(self, task: Any, socket_id: Any) -> bool:
        """A task of its sockets, or a call to one of its sockets sent under the socket's earlier function name
        (the consumer runs the function the socket names now); never one of Celery's own tasks."""
        if task in self.allowed:
            return True
        return socket_id in self.socket_ids and isinstance(task, str) and not task.startswith("celery.")

    # -- what the database says, cached ---------------------------------------------
    def key(self, key_id: str) -> Any:
        """The :class:`pyfi.core.keys.KeyOwner` of ``key_id``, or None."""
        from pyfi.core.keys import key_owner

        return self._cached(self._keys, key_id, lambda session: key_owner(session, key_id))

    def call_key(self, key_id: str) -> bytes | None:
        """The call key of ``key_id`` for this worker's processor (pyfi.messaging.signing), or None."""
        from pyfi.core.keys import call_key

        return self._cached(self._call_keys, key_id, lambda session: call_key(session, key_id, self.processor_id))

    def may_run(self, user: str | None) -> bool:
        """Whether ``user`` holds RUN_TASK (or ALL)."""
        from pyfi.core.access import rights_of

        if user is None:
            return False
        held = self._cached(self._rights, user, lambda session: {str(r) for r in rights_of(session, user)})
        return RUN_TASK in held or "ALL" in held

    def _cached(self, store: dict[str, tuple[float, Any]], key: str, load: Callable[[Any], Any]) -> Any:
        """What ``load`` read at most :attr:`ttl` seconds ago; while the database is away, what it read last."""
        from pyfi.db.engine import session_scope

        cached = store.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        try:
            with session_scope(self.db_url) as session:
                value = load(session)
        except Exception:
            if cached is None:
                raise
            return cached[1]
        store[key] = (time.monotonic() + self.ttl, value)
        return value


def malformed(headers: dict[str, Any]) -> str | None:
    """Why the headers the gate reads are not what pyfi sends; None when they are."""
    for name in TEXT_HEADERS:
        value = headers.get(name)
        if value is None and name not in ("id", "task"):
            continue
        if not isinstance(value, str) or not 0 < len(value) <= MAX_HEADER or _CONTROL.search(value):
            return f"{name!r} is not text of 1-{MAX_HEADER} characters without control characters"
    index = headers.get("group_index")
    if index is not None and (not isinstance(index, int) or isinstance(index, bool)):
        return "'group_index' is not a number"
    return None


def backend_error(exc: BaseException) -> bool:
    """An error of the database itself (down, locked, a login or a schema it refuses), not of what a message holds."""
    from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

    return isinstance(exc, OUTAGE) or isinstance(exc, DBAPIError) and not isinstance(exc, (DataError, IntegrityError))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _body(message: Any) -> tuple[list, dict, dict] | None:
    """(args, kwargs, embed) of a call's body, or None when it is not Celery's (it cannot have been signed)."""
    try:
        args, kwargs, embed = message.decode()
    except Exception:  # noqa: BLE001 - anything a sender could put there
        return None
    if not isinstance(args, list) or not isinstance(kwargs, dict) or not isinstance(embed, (dict, type(None))):
        return None
    return args, kwargs, embed or {}


def _short(headers: Any, name: str) -> str:
    """A header for a log line: at most 80 characters of it (never a body)."""
    value = headers.get(name) if isinstance(headers, dict) else None
    return repr(str(value)[:80]) if value is not None else "?"
