"""What a worker's processes record and publish through: a line to the sidecar.

The prefork parent and its pool children hand every record (a call's
received/prerun/postrun...) and every pub/sub message to the worker's
sidecar (:mod:`pyfi.worker.sidecar`) as one line on a Unix socket: a few
microseconds in the call's path instead of a database batch and a Redis
write. The sidecar writes and publishes them in batches.

:class:`RecordSink` has the recorder's methods (``received``, ``started``...,
``flush``, ``stop``) and the publisher's ``publish``, so the lifecycle hooks
do not know which they talk to. Times are stamped here, when the step
happens, not when the sidecar gets to it. If the sidecar cannot be reached,
the process falls back to its own recorder and publisher. What a sidecar
killed with SIGKILL had read but not yet written (up to its last batch,
about 0.1-0.3 s of calls) is lost; everything else is delayed, never dropped.

The line protocol (UTF-8, one per line; JSON never holds a raw newline):

- ``R<TAB>[method, epoch seconds, {arguments}]``: a record (``method`` in :data:`RECORD_METHODS`)
- ``P<TAB>channel<TAB>payload``: publish ``payload`` (JSON text) on ``channel``
- ``F<TAB>token``: flush; the sidecar answers ``token<TAB>1`` once every record sent before is written.
  The process then writes a byte to the FIFO :func:`wake_path` names, so a sidecar pausing to let
  lines gather wakes for it at once.
- ``S``: stop (the worker's main process, at shutdown); answered ``S<TAB>1`` when all is written
- the steps every call takes in a pool process (``B``, ``E``, or ``J``): see :mod:`pyfi.worker.steps`
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

from pyfi.messaging.pubsub import Publisher, encode, publisher_for
from pyfi.worker.recorder import Recorder
from pyfi.worker.steps import KINDS, Steps, decode_step

log = logging.getLogger("pyfi.worker")

RECORD, PUBLISH, FLUSH, STOP = "R", "P", "F", "S"
RECORD_METHODS = frozenset({"received", "started", "finished", "failed", "retried", "revoked", "refused",
                            "cancelled"})
_ENCODER = json.JSONEncoder(separators=(",", ":"), default=str)


class _Held(threading.local):
    """The lines :meth:`RecordSink.batch` holds for one thread (None: send at once)."""

    lines: list[str] | None = None


def worker_name(pid: int) -> str:
    """How a worker's events name it: its main process's pid at its host (``12345@node1``)."""
    return f"{pid}@{socket.gethostname()}"


class RecordSink:
    """The recorder and publisher of one worker's processes (see the module docstring)."""

    def __init__(self, address: str | None, db_url: str, pubsub_url: str, owner: str | None = None,
                 steps: Steps | None = None, *, namespace: str = "", signer: Any = None) -> None:
        """``address``: the sidecar's socket; None when the worker has none (every process then records itself).

        ``steps``: how to apply step lines (:meth:`send_step`) here if the sidecar is gone.
        """
        self.address, self.db_url, self.pubsub_url, self.owner = address, db_url, pubsub_url, owner
        self.namespace, self.signer = namespace, signer  # what it publishes itself is sealed as the sidecar seals
        self.steps = steps
        self.worker = worker_name(os.getpid())  # made in the worker's main process: its pool processes inherit it
        self._pid = -1
        self._adopt_process()

    # -- the recorder's interface (pyfi.worker.recorder.Recorder) ---------------------
    def received(self, call_id: str, name: str, socket_id: str | None, parent: str | None = None,
                 tracking: str | None = None, taskparent: str | None = None, plug_id: str | None = None,
                 when: dt.datetime | None = None, *, attempt: int = 0, sender: str | None = None) -> None:
        self._record("received", when, call_id=call_id, name=name, socket_id=socket_id, parent=parent,
                     tracking=tracking, taskparent=taskparent, plug_id=plug_id, attempt=attempt, sender=sender)

    def started(self, call_id: str, when: dt.datetime | None = None, *, name: str = "", attempt: int = 0,
                socket_id: str | None = None) -> None:
        self._record("started", when, call_id=call_id, name=name, attempt=attempt, socket_id=socket_id)

    def finished(self, call_id: str, resultkey: str | None, when: dt.datetime | None = None, *,
                 name: str = "", attempt: int = 0, socket_id: str | None = None) -> None:
        self._record("finished", when, call_id=call_id, resultkey=resultkey, name=name, attempt=attempt,
                     socket_id=socket_id)

    def failed(self, call_id: str, error: str, when: dt.datetime | None = None, *, name: str = "", attempt: int = 0,
               socket_id: str | None = None) -> None:
        self._record("failed", when, call_id=call_id, error=error, name=name, attempt=attempt, socket_id=socket_id)

    def retried(self, call_id: str, reason: str, when: dt.datetime | None = None, *, name: str = "", attempt: int = 0,
                socket_id: str | None = None) -> None:
        self._record("retried", when, call_id=call_id, reason=reason, name=name, attempt=attempt, socket_id=socket_id)

    def revoked(self, call_id: str, when: dt.datetime | None = None, *, name: str = "",
                socket_id: str | None = None) -> None:
        self._record("revoked", when, call_id=call_id, name=name, socket_id=socket_id)

    def cancelled(self, call_id: str, name: str, socket_id: str | None, note: str,
                  when: dt.datetime | None = None) -> None:
        self._record("cancelled", when, call_id=call_id, name=name, socket_id=socket_id, note=note)

    def refused(self, call_id: str, name: str, socket_id: str | None, reason: str, when: dt.datetime | None = None, *,
                sender: str | None = None, tracking: str | None = None) -> None:
        self._record("refused", when, call_id=call_id, name=name, socket_id=socket_id, reason=reason, sender=sender,
                     tracking=tracking)

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Block until this process's records so far are in the database; False on timeout.

        Call it outside :meth:`batch` (what a batch holds is sent when the batch ends).
        """
        self._adopt_process()
        if self._local is None:
            with self._lock:
                self._token += 1
                token = str(self._token)
                if self._send(f"{FLUSH}\t{token}\n"):
                    self._poke()
                    if self._await_reply(token, timeout):
                        return True
            if self._local is None:
                return False
        return self._local[0].flush(timeout)

    def stop(self, timeout: float | None = 10.0) -> bool:
        """This process is done: close its line (a pool child at exit) or write its own records."""
        self._adopt_process()
        if self._local is not None:
            self._local[1].close()
            return self._local[0].stop(timeout)
        with self._lock:
            self._close()
        return True

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Hold this thread's lines and send them in one write at the end (one call step's records and message)."""
        self._adopt_process()
        if self._held.lines is not None:  # nested: the outer batch sends
            yield
            return
        self._held.lines = []
        try:
            yield
        finally:
            lines, self._held.lines = self._held.lines, None
            if lines:
                self._send_lines(lines)

    def send_step(self, line: str) -> None:
        """Send one step line (:func:`pyfi.worker.steps.encode_step`)."""
        self._adopt_process()
        self._send_lines([line])

    # -- the publisher's interface ------------------------------------------------------
    def publish(self, channel: str, message: Mapping[str, Any]) -> bool:
        self._adopt_process()
        self._send_lines([f"{PUBLISH}\t{channel}\t{encode(message)}\n"])
        return True

    # -- internals ----------------------------------------------------------------------
    def _record(self, method: str, when: dt.datetime | None, **arguments: Any) -> None:
        self._adopt_process()
        stamp = when.timestamp() if when is not None else time.time()
        line = _ENCODER.encode([method, stamp, arguments])
        self._send_lines([f"{RECORD}\t{line}\n"])

    def _adopt_process(self) -> None:
        """After a fork: the parent's connection is not ours (each process has its own line)."""
        if self._pid == os.getpid():
            return
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._local: tuple[Recorder, Publisher] | None = None
        self._token, self._replies = 0, b""
        self._held = _Held()
        self._wake: int | None = None

    def _send_lines(self, lines: list[str]) -> None:
        """Send (or, inside :meth:`batch`, hold) ``lines``; redo them locally if the sidecar is gone."""
        if self._held.lines is not None:
            self._held.lines.extend(lines)
            return
        with self._lock:
            sent = self._local is None and self._send("".join(lines))
        if not sent:
            self._replay(lines)

    def _replay(self, lines: list[str]) -> None:
        """Hand lines the sidecar did not take to this process's own recorder and publisher."""
        recorder, publisher = self._fallback()
        outbox: list[tuple[float, str, str]] = []
        for line in lines:
            kind, _, body = line.rstrip("\n").partition("\t")
            apply_line(kind, body, recorder, outbox, self.steps)
        if outbox:
            publisher.publish_encoded([(channel, payload) for _, channel, payload in outbox])

    def _send(self, line: str) -> bool:
        """Write one line (caller holds the lock); False once the sidecar is unreachable."""
        try:
            if self.address is None:
                raise ConnectionRefusedError("this worker has no sidecar")
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self._sock.connect(self.address)
            self._sock.sendall(line.encode())
            return True
        except OSError as exc:
            self._close()
            self._fallback(exc)
            return False

    def _poke(self) -> None:
        """Cut the sidecar's batching pause short: this process waits for a flush (a hint only)."""
        if self._wake is None:
            self._wake = open_wake(self.address or "")
        poke(self._wake)

    def _await_reply(self, token: str, timeout: float | None) -> bool:
        """Read answer lines until ``token``'s (older ones, from flushes that timed out, are skipped)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        assert self._sock is not None
        try:
            while True:
                line, sep, rest = self._replies.partition(b"\n")
                if sep:
                    self._replies = rest
                    answer, _, ok = line.decode().partition("\t")
                    if answer == token:
                        return ok == "1"
                    continue
                self._sock.settimeout(None if deadline is None else max(deadline - time.monotonic(), 0.001))
                chunk = self._sock.recv(4096)
                if not chunk:
                    raise ConnectionResetError("sidecar closed the connection")
                self._replies += chunk
        except socket.timeout:
            return False
        except OSError as exc:
            self._close()
            self._fallback(exc)
            return False
        finally:
            if self._sock is not None:
                self._sock.settimeout(None)

    def _close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _fallback(self, exc: BaseException | None = None) -> tuple[Recorder, Publisher]:
        """This process's own recorder and publisher, for when the sidecar is gone."""
        if self._local is None:
            if self.address is not None:
                log.warning("worker sidecar unreachable (%s); process %d records and publishes by itself",
                            exc, os.getpid())
            self._local = (Recorder(self.db_url, owner=self.owner, worker=self.worker),
                           publisher_for(self.pubsub_url, self.namespace, self.signer))
        return self._local


def apply_line(kind: str, body: str, recorder: Recorder, outbox: list[tuple[float, str, str]],
               steps: Steps | None) -> bool:
    """Record what a record or step line says and add its messages to ``outbox`` as ``(stamp, channel, payload)``.

    The sidecar and a process without one both apply lines here. False if
    ``kind`` is none of those lines; ValueError or TypeError if it is malformed.
    """
    if kind in KINDS and steps is not None:
        steps.apply(*decode_step(kind, body), recorder, outbox)
    elif kind == RECORD:
        method, stamp, arguments = json.loads(body)
        if method not in RECORD_METHODS or not isinstance(arguments, dict):
            raise ValueError(f"not a record: {method!r}")
        getattr(recorder, method)(when=from_epoch(float(stamp)), **arguments)
    elif kind == PUBLISH:
        channel, _, payload = body.partition("\t")
        outbox.append((time.time(), channel, payload))
    else:
        return False
    return True


def wake_path(address: str) -> str:
    """The FIFO next to the sidecar's socket that a process writes a byte to after asking for a flush."""
    return str(Path(address).with_name("wake"))


def open_wake(address: str) -> int | None:
    """The write end of the sidecar's wake FIFO; None if there is none (the sidecar's pause then runs out)."""
    try:
        return os.open(wake_path(address), os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return None


def poke(wake: int | None) -> None:
    """Wake a sidecar that pauses to let lines gather: someone waits for its answer."""
    if wake is not None:
        try:
            os.write(wake, b"!")
        except OSError:  # full: it is awake anyway
            pass


def from_epoch(stamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(stamp, dt.timezone.utc)
