"""One agent per node name on a machine: the running agent holds a lock next to its work dir.

Why: two agents with one node name share a work dir and the node's rows. The
second would adopt the first one's workers, and stop them when it stops; with
``--clean`` it would wipe the checkouts they run from. The lock is an
``flock`` on a file, so it goes with its process, however that ends.
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

from pyfi.errors import InUse


class NodeLock:
    """The lock of one node's work dir (``<work dir>.lock``); it holds the owner's pid, for the error."""

    def __init__(self, workdir: Path, node: str) -> None:
        self.path = Path(f"{workdir}.lock")
        self.node = node
        self._fd: int | None = None

    def acquire(self) -> None:
        """Hold the lock, or raise :class:`InUse` naming the agent that holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise InUse(f"an agent for node {self.node!r} already runs on this machine (pid {holder})",
                        "stop it first, or give this agent another -n/--name") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        """Let go (the file stays: deleting it would race with the next agent taking it)."""
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor releases the flock
            self._fd = None
