"""Waiting for a condition, with a deadline: the one polling helper of pyfi's tests and benchmarks.

A test or a benchmark watching a network asks again and again until what it
waits for holds, and fails, naming what it waited for, once the deadline
has passed; it never sleeps a fixed time and hopes.
"""
from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """What was waited for did not happen in time (an AssertionError, so a test reports it as a failure)."""


def wait_for(predicate: Callable[[], T], timeout: float = 20.0, what: str = "condition", interval: float = 0.1) -> T:
    """Call ``predicate`` every ``interval`` seconds until it returns something truthy, and return that.

    Raises :class:`WaitTimeout` after ``timeout`` seconds, with the last value it returned.
    """
    deadline = time.monotonic() + timeout
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {timeout:g} s waiting for {what} (last value: {last!r})")
        time.sleep(interval)
