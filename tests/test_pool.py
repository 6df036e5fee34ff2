"""The worker's pool and event loop stop promptly: what makes `pyfi proc stop` quick."""
from __future__ import annotations

import os
import signal
import threading
import time
from types import SimpleNamespace

from kombu.asynchronous import Hub

from pyfi.worker.pool import TaskPool
from pyfi.worker.wakeup import SignalWakeup


def square(x: int) -> int:
    return x * x


def test_the_threaded_pool_joins_without_billiards_sleeps() -> None:
    """Stock billiard takes over a second here: each process sleeps 1 s after saying it exits,
    and the supervisor and time-limit threads sleep 0.8 s and 1 s between rounds."""
    pool = TaskPool.BlockingPool(processes=2, enable_timeouts=True, threads=True)
    try:
        assert pool.apply_async(square, (7,)).get(timeout=20) == 49
        time.sleep(1.0)  # the supervisor's first pause is over: it is in its steady rounds
        began = time.monotonic()
        pool.close()
        pool.join()
        took = time.monotonic() - began
    finally:
        pool.terminate()
    assert took < 1.0, f"the pool took {took:.2f} s to close and join (one of billiard's sleeps is 1 s)"


def test_a_signal_wakes_the_event_loop_at_once() -> None:
    """Without the wakeup, the loop's poll runs its full timeout after a signal's handler returns."""
    hub = Hub()
    consumer = SimpleNamespace(hub=hub)
    step = SignalWakeup(consumer)
    caught: list[float] = []
    previous = signal.signal(signal.SIGUSR1, lambda *_: caught.append(time.monotonic()))
    step.start(consumer)
    try:
        hub.call_later(30.0, lambda: None)  # nothing else due: each poll may wait its maximum
        loop = hub.create_loop()
        next(loop)
        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGUSR1)).start()
        deadline = time.monotonic() + 10
        while not caught and time.monotonic() < deadline:
            next(loop)
        woke = time.monotonic()
    finally:
        step.stop(consumer)
        signal.signal(signal.SIGUSR1, previous)
        hub.close()
    assert caught, "the signal never arrived"
    assert woke - caught[0] < 0.2, f"the loop went on polling {woke - caught[0]:.2f} s after the signal"
    assert signal.set_wakeup_fd(-1) == -1, "stopping the step must give the wakeup fd back"


def test_off_the_main_thread_the_wakeup_stands_aside() -> None:
    """A worker run in another program's thread cannot own the process's signals: it runs without the wakeup."""
    hub = Hub()
    consumer = SimpleNamespace(hub=hub)
    step = SignalWakeup(consumer)
    errors: list[BaseException] = []

    def start() -> None:
        try:
            step.start(consumer)
        except BaseException as exc:  # noqa: BLE001 - the test reports it
            errors.append(exc)

    thread = threading.Thread(target=start)
    thread.start()
    thread.join(10)
    try:
        assert not errors, f"starting off the main thread raised {errors[0]!r}"
        assert step.fds is None and not hub.readers
    finally:
        step.stop(consumer)
        hub.close()


def test_a_pool_process_killed_holding_the_task_queue_lock_does_not_hang_the_pool() -> None:
    """The lock a killed process held (taken here, as it would have been) is freed once a death is seen."""
    pool = TaskPool.BlockingPool(processes=2, enable_timeouts=True, threads=True)
    try:
        assert pool.apply_async(square, (3,)).get(timeout=20) == 9
        assert pool._inqueue._rlock.acquire(timeout=5)  # as a pool process reading a task holds it, for an instant
        os.kill(pool._pool[0].pid, signal.SIGKILL)  # ... and is killed then: nothing gives the lock back
        results = [pool.apply_async(square, (n,)) for n in range(6)]
        assert [r.get(timeout=30) for r in results] == [n * n for n in range(6)]
    finally:
        kill_processes(pool)  # (a process forked from this many-threaded test process may not end on SIGTERM)
        pool.terminate()


def kill_processes(pool: TaskPool.BlockingPool) -> None:
    """SIGKILL the pool's processes, so that ``terminate`` has only the dead to join."""
    for process in list(pool._pool):
        try:
            os.kill(process.pid, signal.SIGKILL)
        except (OSError, TypeError):  # gone already, or never started
            pass
