"""Funnels (Celery chords) joined where their last header call ends, on the database result backend too.

Celery joins a chord natively on key-value backends (Redis): the worker
that finishes the last call of the header sends the body. On backends
without that (the database backend: the embedded default's ``db+sqlite``)
it sends a ``celery.chord_unlock`` task instead, which polls the header's
results and sends the body from whichever worker runs it, signed with that
worker's processor's key. pyfi's workers never run Celery's own tasks
(:mod:`pyfi.worker.gate`): a sender could name any body there, and it would
go out under another processor's key. So the database backend joins
natively too (:class:`DatabaseBackend`, which :func:`pyfi.messaging.app.make_app`
puts in place of Celery's for ``db+`` URLs), and no pyfi sender ever sends
``chord_unlock``.
"""
from __future__ import annotations

from typing import Any

from celery.backends.database import DatabaseBackend as CeleryDatabaseBackend
from celery.canvas import maybe_signature
from celery.exceptions import ChordError
from celery.result import GroupResult, allow_join_result
from sqlalchemy.exc import IntegrityError

#: the group row that says a funnel's body was sent (one per funnel: a second insert fails)
JOINED = "pyfi-joined-"


class DatabaseBackend(CeleryDatabaseBackend):
    """Celery's database result backend, joining chords where their last header call ends (no ``chord_unlock``)."""

    def apply_chord(self, header_result_args: Any, body: Any, **kwargs: Any) -> None:
        """Sending a chord: keep its header's group, which each header call looks at when it ends."""
        self.ensure_chords_allowed()
        self.app.GroupResult(*header_result_args).save(backend=self)

    def on_chord_part_return(self, request: Any, state: str, result: Any, **kwargs: Any) -> None:
        """A header call ended (its result is stored): the first to see every call of the header ended sends the body.

        Two calls ending at once may both see it; only the one that records
        the join first (a unique row) sends it.
        """
        group_id = request.group
        if not group_id or not request.chord:
            return
        header = GroupResult.restore(group_id, backend=self)
        if header is not None and not header.ready():
            return
        if not self._claim(group_id):
            return
        body = maybe_signature(request.chord, app=self.app)
        if header is None:
            self.chord_error_from_stack(body, ChordError(f"the group of funnel {group_id} is gone"))
            return
        try:
            with allow_join_result():
                values = header.join(timeout=self.app.conf.result_chord_join_timeout, propagate=True)
        except Exception as exc:  # noqa: BLE001 - a header call failed: so does the body
            self.chord_error_from_stack(body, ChordError(f"a call of funnel {group_id} failed: {exc!r}"))
            return
        try:
            self.app.amqp._retry_publish(body.delay, values)
        except Exception as exc:  # noqa: BLE001 - the broker refused it
            self.chord_error_from_stack(body, ChordError(f"the last call of funnel {group_id} was not sent: {exc!r}"))

    def _claim(self, group_id: str) -> bool:
        """True for the one caller that records funnel ``group_id`` as joined."""
        try:
            self._save_group(JOINED + group_id, None)
        except IntegrityError:
            return False
        return True
