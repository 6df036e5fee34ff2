"""The worker's sidecar: one process that records and publishes for all the others.

Why: on a busy machine a call's cost is CPU, and the pool process that runs
it is the worst place to spend it. A recorder thread in each pool process
would compete with the call for the GIL and write three Redis messages per
call (about 45% more CPU per call than bare Celery, measured on 2 cores).
So the prefork parent and its pool children each write one short line per
step to this process (:mod:`pyfi.worker.sink`), which

- hands records to one :class:`~pyfi.worker.recorder.Recorder` (bigger
  batches, one writer per worker instead of one per process), and
- publishes what arrived since its last wake-up in one write to the backend.

It is forked by the worker's main process before the pool starts, ignores
SIGINT/SIGTERM (the main process shuts down first, then says ``S``), and
also ends, after writing everything, when its parent is gone. It leaves with
``os._exit``: it must not run the parent's exit hooks or close connections
it inherited.
"""
from __future__ import annotations

import ctypes
import logging
import os
import select
import selectors
import shutil
import signal
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from pathlib import Path

from pyfi.messaging.pubsub import Publisher, publisher_for
from pyfi.worker.recorder import Recorder
from pyfi.worker.sink import FLUSH, STOP, apply_line, open_wake, poke, wake_path, worker_name
from pyfi.worker.steps import Steps

log = logging.getLogger("pyfi.worker")

#: after a wake-up with work, wait this long so the next one finds a batch (seconds). Wake-ups
#: cost CPU (a select, a read per process, a Redis round trip): at 5 ms the sidecar spent a third
#: of its CPU on them, and at 20 ms it still used 0.23 ms per call against 0.16 at 50 ms. It is
#: the most a lifecycle message waits to be published while calls keep coming; a process
#: waiting for a flush cuts the pause short (it pokes the wake FIFO, see :meth:`SidecarServer.pause`).
BATCH_PAUSE = 0.1
#: while a process waits for a flush: how often to check whether the records are written
FLUSH_POLL = 0.002
#: how often an idle sidecar checks that its parent still lives
IDLE_WAIT = 0.5
#: how long the main process waits for the sidecar to write everything at shutdown
STOP_TIMEOUT = 15.0
#: how long the sidecar tries to write what is left at shutdown before it saves it to the journal
#: (:mod:`pyfi.worker.journal`): well inside the agent's grace period, after which everything is killed
WRITE_BUDGET = 5.0
PR_SET_NAME = 15
#: the sidecar's name in ``ps -o comm`` and /proc/PID/comm (its command line is the worker's)
PROCESS_NAME = "pyfi-sidecar"


@dataclass
class _Peer:
    """One connected process: its socket and the bytes of an unfinished line."""

    sock: socket.socket
    pending: bytes = b""


@dataclass
class _Flush:
    peer: _Peer
    token: str
    written: threading.Event


@dataclass
class SidecarServer:
    """The loop of the sidecar process: read lines, record, publish, answer flushes."""

    listener: socket.socket
    recorder: Recorder
    publisher: Publisher
    parent: int
    steps: Steps | None = None
    wake: int | None = None  # read end of the FIFO a process pokes after asking for a flush
    selector: selectors.BaseSelector = field(default_factory=selectors.DefaultSelector)
    outbox: list[tuple[float, str, str]] = field(default_factory=list)  # (stamp, channel, payload)
    flushes: list[_Flush] = field(default_factory=list)
    stop_peer: _Peer | None = None

    def serve(self) -> None:
        self.listener.setblocking(False)
        self.selector.register(self.listener, selectors.EVENT_READ)
        while self.stop_peer is None and os.getppid() == self.parent:
            busy = self.step(FLUSH_POLL if self.flushes else IDLE_WAIT)
            if busy and not self.flushes:
                self.pause()
        self.drain()
        self.shut_down()

    def pause(self) -> bool:
        """Let lines gather for ``BATCH_PAUSE`` s, unless a process pokes the wake FIFO: it waits for a flush.

        True when a poke cut the pause short.
        """
        if self.wake is None:
            time.sleep(BATCH_PAUSE)
            return False
        if not select.select([self.wake], [], [], BATCH_PAUSE)[0]:
            return False
        try:
            os.read(self.wake, 4096)
        except BlockingIOError:
            pass
        return True

    def step(self, timeout: float) -> bool:
        """One wake-up: take what arrived, publish it, answer finished flushes; True if anything came."""
        ready = self.selector.select(timeout)
        for key, _ in ready:
            if key.fileobj is self.listener:
                self.accept()
            else:
                self.read(key.data)
        self.publish()
        self.answer_flushes()
        return bool(ready)

    def accept(self) -> None:
        try:
            sock, _ = self.listener.accept()
        except BlockingIOError:
            return
        sock.setblocking(False)
        self.selector.register(sock, selectors.EVENT_READ, _Peer(sock))

    def read(self, peer: _Peer) -> bool:
        """Handle the complete lines ``peer`` has sent so far; False when nothing more is waiting."""
        try:
            chunk = peer.sock.recv(1 << 16)
        except BlockingIOError:
            return False
        except OSError:
            chunk = b""
        if not chunk:  # the process closed its end (or died)
            self.selector.unregister(peer.sock)
            peer.sock.close()
            return False
        *lines, peer.pending = (peer.pending + chunk).split(b"\n")
        for line in lines:
            self.handle(peer, line.decode("utf-8", "replace"))
        return True

    def handle(self, peer: _Peer, line: str) -> None:
        kind, _, body = line.partition("\t")
        try:
            if kind == FLUSH and self.recorder.failing:  # no waiting for a database that is down
                self.answer(peer, body, False)
            elif kind == FLUSH:
                self.flushes.append(_Flush(peer, body, self.recorder.request_flush()))
            elif kind == STOP:
                self.stop_peer = peer
            elif not apply_line(kind, body, self.recorder, self.outbox, self.steps):
                raise ValueError(f"unknown line kind {kind!r}")
        except Exception as exc:  # noqa: BLE001 - a bad line costs itself only, never the sidecar and its records
            log.warning("sidecar: ignoring a malformed line (%s: %s): %.120s", type(exc).__name__, exc, line)

    def publish(self) -> None:
        """Publish what arrived, in the order the steps happened (each process's lines are read in turn, not by time)."""
        if self.outbox:
            batch, self.outbox = self.outbox, []
            batch.sort(key=_stamp)
            self.publisher.publish_encoded([(channel, payload) for _, channel, payload in batch])

    def answer_flushes(self) -> None:
        waiting = []
        for flush in self.flushes:
            if flush.written.is_set():
                self.answer(flush.peer, flush.token, True)
            elif self.recorder.failing:  # the database went down meanwhile: say so now, not after the caller's timeout
                self.answer(flush.peer, flush.token, False)
            else:
                waiting.append(flush)
        self.flushes = waiting

    @staticmethod
    def answer(peer: _Peer, token: str, written: bool) -> None:
        try:
            peer.sock.sendall(f"{token}\t{int(written)}\n".encode())
        except OSError:
            pass  # the process asking is gone (or gave up): nothing to answer

    def drain(self) -> None:
        """Take every line still buffered in the sockets (the processes have gone or are going)."""
        for key in list(self.selector.get_map().values()):
            if key.fileobj is not self.listener:
                while self.read(key.data):
                    pass
        self.publish()

    def shut_down(self) -> None:
        written = self.recorder.stop(WRITE_BUDGET)
        self.answer_flushes()
        self.publisher.close()
        if self.stop_peer is not None:
            try:
                self.stop_peer.sock.setblocking(True)
                self.stop_peer.sock.sendall(f"{STOP}\t{int(written)}\n".encode())
            except OSError:
                pass


@dataclass
class Sidecar:
    """The main process's handle on its sidecar: where to reach it, how to stop it."""

    pid: int
    address: str
    directory: Path

    def stop(self, timeout: float = STOP_TIMEOUT) -> bool:
        """Ask the sidecar to write everything and exit; True if it confirmed it all."""
        confirmed = False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout)
                sock.connect(self.address)
                sock.sendall(f"{STOP}\n".encode())
                wake = open_wake(self.address)
                poke(wake)  # not worth a batching pause: the process is waiting to exit
                if wake is not None:
                    os.close(wake)
                confirmed = sock.recv(64).startswith(f"{STOP}\t1".encode())
        except OSError as exc:
            log.warning("worker sidecar did not confirm its records were written: %s", exc)
        self._reap(timeout)
        shutil.rmtree(self.directory, ignore_errors=True)
        return confirmed

    def _reap(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if os.waitpid(self.pid, os.WNOHANG)[0]:
                    return
            except ChildProcessError:
                return  # reaped already (or not our child)
            time.sleep(0.01)


def start_sidecar(db_url: str, pubsub_url: str, owner: str | None, steps: Steps | None = None, *,
                  namespace: str = "", signer: Any = None) -> Sidecar | None:
    """Fork the sidecar; call before the pool (and any thread) starts.

    ``namespace`` and ``signer``: the network's channel prefix and the processor's
    key, which seals what the sidecar publishes (:mod:`pyfi.messaging.pubsub.network`).

    None if it cannot listen (no writable temp dir, a TMPDIR too long for a
    socket path): the worker's processes then record and publish by themselves.
    """
    directory = None
    try:
        directory = Path(tempfile.mkdtemp(prefix="pyfi-sidecar-"))  # mode 700: only this user may connect
        address = str(directory / "sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(address)
        listener.listen(64)
        os.mkfifo(wake_path(address), 0o600)
    except OSError as exc:
        log.warning("cannot start the worker's sidecar (%s); each process records by itself", exc)
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)
        return None
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        _run_sidecar(listener, parent, db_url, publisher_for(pubsub_url, namespace, signer), owner, steps)
    listener.close()
    return Sidecar(pid, address, directory)


def _open_wake(address: str) -> int | None:
    """The FIFO's read end, plus a write end kept open so that it never reads as closed."""
    try:
        read_end = os.open(wake_path(address), os.O_RDONLY | os.O_NONBLOCK)
        os.open(wake_path(address), os.O_WRONLY | os.O_NONBLOCK)
        return read_end
    except OSError as exc:
        log.warning("sidecar: no wake FIFO (%s); a flush may wait up to %.2f s more", exc, BATCH_PAUSE)
        return None


def _run_sidecar(listener: socket.socket, parent: int, db_url: str, publisher: Any, owner: str | None,
                 steps: Steps | None) -> None:
    code = 0
    try:
        name_process(PROCESS_NAME)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the main process
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # shuts down first, then tells us to stop
        wake = _open_wake(listener.getsockname())
        recorder = Recorder(db_url, owner=owner, worker=worker_name(parent))
        server = SidecarServer(listener, recorder, publisher, parent, steps, wake=wake)
        server.serve()
    except BaseException:  # noqa: BLE001 - report, then leave without running the parent's code
        log.exception("worker sidecar failed")
        code = 1
    finally:
        os._exit(code)


def _stamp(item: tuple[float, str, str]) -> float:
    return item[0]


def name_process(name: str) -> None:
    """Set this process's short name (Linux ``prctl(PR_SET_NAME)``); elsewhere, do nothing."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0)
    except (OSError, AttributeError):
        pass
