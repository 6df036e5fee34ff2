"""Slowing down password guessing at ``POST /api/token``.

After :data:`LIMIT` failed logins within :data:`WINDOW` seconds for one user
name, or from one client address, further attempts for it are refused with
429 and ``Retry-After`` until the oldest failure leaves the window. Kept in
the server's memory: a restart forgets, which costs a guesser a restart of
someone else's server.
"""
from __future__ import annotations

import math
import threading
import time
from collections import defaultdict, deque

LIMIT = 5
WINDOW = 60.0


class LoginThrottle:
    """Failed logins per key (``user:NAME``, ``client:ADDRESS``) within the window."""

    def __init__(self, limit: int = LIMIT, window: float = WINDOW) -> None:
        self.limit, self.window = limit, window
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def wait(self, keys: list[str]) -> int:
        """Seconds to wait before trying again under any of ``keys`` (0: go ahead)."""
        now = time.monotonic()
        with self._lock:
            waits = [self._wait(key, now) for key in keys]
        return max(waits, default=0)

    def _wait(self, key: str, now: float) -> int:
        times = self._failures.get(key)
        if not times:
            return 0
        while times and now - times[0] >= self.window:
            times.popleft()
        if len(times) < self.limit:
            return 0
        return max(1, math.ceil(self.window - (now - times[0])))

    def failed(self, keys: list[str]) -> None:
        now = time.monotonic()
        with self._lock:
            for key in keys:
                self._failures[key].append(now)

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)
