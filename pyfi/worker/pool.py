"""The prefork pool of pyfi's workers: Celery's, without the sleeps that made a stop slow.

Why: ``pyfi proc stop`` waits for the worker process to be gone, and most
of a worker's stop was billiard sleeping:

- Once a pool process has told its parent that it exits (a DEATH message on
  its result pipe), billiard has it sleep one second in case the parent
  kills it first. At shutdown the parent is not reading results any more,
  so every stop waited the full second for the pool to join. Exiting right
  after the message loses nothing: it is in the pipe, which the parent
  still reads after the writer is gone, and the parent's kill of an exited
  process is a no-op it already expects.
- Without an event loop (the embedded default's transport), the pool runs
  helper threads that sleep 0.8 s (the supervisor) and 1 s (the time-limit
  checker) between rounds; the stop joins both. Here their pauses end as
  soon as they are told to close.

That pool's processes share the task queue's read lock and the result
queue's write lock; a process killed while holding one would hang the
worker for good. Here a process holds either only while it reads or
writes one message, and the supervisor frees a lock a dead process left
taken (:func:`free_locks`).
"""
from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any, NoReturn

from billiard import pool as billiard_pool
from billiard.common import TERM_SIGNAL, restart_state
from billiard.exceptions import RestartFreqExceeded
from celery.concurrency import asynpool, prefork

log = logging.getLogger("pyfi.worker")


class _PromptExit:
    """A pool process's exit (billiard's ``Worker._do_exit``) without the sleep."""

    outq: Any
    on_exit: Any

    def _do_exit(self, pid: int, exitcode: int | None, exc: BaseException | None = None) -> NoReturn:
        if exitcode is None:
            exitcode = billiard_pool.EX_FAILURE if exc else billiard_pool.EX_OK
        try:
            if self.on_exit is not None:  # Celery's worker_process_shutdown: the sink closes its line here
                self.on_exit(pid, exitcode)
            # the parent answers the message with SIGTERM: arriving mid-write, it would leave the pipe locked
            blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {TERM_SIGNAL})
            try:
                self.outq.put((billiard_pool.DEATH, (pid, exitcode)))
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        finally:
            os._exit(exitcode)


class _AsynWorker(_PromptExit, asynpool.Worker):
    """A pool process of the event-loop pool (Redis, RabbitMQ)."""


class _BlockingWorker(_PromptExit, billiard_pool.Worker):
    """A pool process of the threaded pool (transports without an event loop: the embedded default).

    It waits for a task without the task queue's read lock, and takes the
    lock only to read a task that is there (billiard's holds it while it
    waits, so the idle process most likely to be killed is the one holding it).
    """

    def _make_recv_method(self, conn: Any) -> Any:
        reader, lock = getattr(conn, "_reader", None), getattr(conn, "_rlock", None)
        if reader is None or lock is None:
            return super()._make_recv_method(conn)
        poll, receive = reader.poll, reader.recv_bytes

        def recv(timeout: float, loads: Any = billiard_pool.pickle_loads) -> tuple[bool, Any]:
            if not poll(timeout):
                return False, None
            with lock:
                if not poll(0):  # another process took it first
                    return False, None
                return True, loads(receive())

        return recv


class _Interruptible:
    """A pool thread whose pauses end as soon as it is told to close or terminate."""

    _state: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._told = threading.Event()
        super().__init__(*args, **kwargs)

    def close(self) -> None:
        super().close()
        self._told.set()

    def terminate(self) -> None:
        super().terminate()
        self._told.set()

    def pause(self, seconds: float) -> None:
        self._told.wait(seconds)


class _Supervisor(_Interruptible, billiard_pool.Supervisor):
    """Replaces pool processes that died, and frees the queue locks a killed one held (see :func:`free_locks`)."""

    pool: Any

    def body(self) -> None:
        self.pause(0.8)  # let the first processes start
        pool = self.pool
        try:
            usual = pool.restart_state
            pool.restart_state = restart_state(10 * pool._processes, 1)  # a burst while starting: fail fast
            for _ in range(10):
                if not self.running():
                    break
                self.maintain()
                self.pause(0.1)
            pool.restart_state = usual
            while self.running():
                self.maintain()
                self.pause(0.8)
        except RestartFreqExceeded:
            pool.close()
            pool.join()
            raise

    def running(self) -> bool:
        return self._state == billiard_pool.RUN and self.pool._state == billiard_pool.RUN

    def maintain(self) -> None:
        before = {process.pid for process in self.pool._pool}
        self.pool._maintain_pool()
        if before - {process.pid for process in self.pool._pool}:  # one died (killed, say): it may have held a lock
            free_locks(self.pool)


#: seconds a queue lock may stay taken after a pool process died before it is taken for the dead one's
LOCK_HELD_AT_MOST = 5.0


def free_locks(pool: Any) -> list[str]:
    """Release the task queue's read lock and the result queue's write lock if a dead process left them taken.

    A pool process takes the first only to read one task that is there, and
    the second to write one result: either is held for an instant. One
    killed (SIGKILL, the OOM killer) in that instant never gives it back, and
    every other pool process then waits on it forever: the worker takes
    calls and runs none. A lock still taken :data:`LOCK_HELD_AT_MOST`
    seconds after a death is the dead process's, and is released here.
    """
    freed = []
    for name, lock in (("task queue", pool._inqueue._rlock), ("result queue", getattr(pool._outqueue, "_wlock", None))):
        if lock is None:
            continue
        if lock.acquire(timeout=LOCK_HELD_AT_MOST):
            lock.release()
            continue
        lock.release()
        freed.append(name)
        log.warning("a pool process died holding the %s lock: released", name)
    return freed



class _TimeoutHandler(_Interruptible, billiard_pool.TimeoutHandler):
    """Enforces time limits once a second, as billiard's; the pause ends when told to stop."""

    def body(self) -> None:
        while self._state == billiard_pool.RUN:
            try:
                for _ in self.handle_timeouts():
                    self.pause(1.0)
            except billiard_pool.CoroStop:
                break


class _JoinedMeansDone:
    """A pool whose exit-time finalizer is dropped once every process of it has been joined.

    That finalizer (billiard's ``_terminate_pool``) first takes the task
    queue's read lock. A pool process killed (SIGKILL, the OOM killer) while
    holding it never gives it back, so the worker hung at exit, after a clean
    stop, until the agent's grace period ran out and it was killed. Once the
    join is over there is no process left for the finalizer to end.
    """

    _terminate: Any

    def join(self) -> None:
        super().join()  # type: ignore[misc]
        self._terminate.cancel()


class _AsynPool(_JoinedMeansDone, asynpool.AsynPool):
    Worker = _AsynWorker


class _BlockingPool(_JoinedMeansDone, billiard_pool.Pool):
    Worker = _BlockingWorker
    Supervisor = _Supervisor
    TimeoutHandler = _TimeoutHandler


class TaskPool(prefork.TaskPool):
    """Celery's prefork pool (``pool="prefork"``), minus the sleeps at shutdown (see the module docstring)."""

    Pool = _AsynPool
    BlockingPool = _BlockingPool
