"""Processes on this machine, read from /proc (Linux): whether one lives, and a processor's workers.

``pid_alive`` and ``proc_stat`` serve the agent (its workers, its deploy
processes) and the recording journal. ``worker_processes`` and
``spare_processes`` are for tools that must see what really runs, not what
the database says (the tests, the reaction benchmark). A worker's pool processes and its sidecar share its command
line, so only the processes whose parent is not one of the matches are
returned: the workers themselves, or whatever is left of one after its main
process died. A spare (``--standby``, see ``pyfi.worker.standby``) is a
worker once an agent has taken it, which is when its run directory gets
its ``meta.json``; until then ``spare_processes`` lists it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

from pyfi.worker.control import read_state
from pyfi.worker.standby import STANDBY


def worker_processes(processor: str, home: Path | str) -> list[int]:
    """Pids of live ``pyfi.worker`` processes for ``processor`` started under ``PYFI_HOME=home``."""
    found = {pid: parent for pid, parent, argv in _processes(processor, home) if not _waiting_spare(argv)}
    return sorted(pid for pid, parent in found.items() if parent not in found)


def spare_processes(processor: str, home: Path | str, ready: bool = False) -> list[int]:
    """Pids of the spares an agent keeps for ``processor``, not taken yet (``ready``: only those done booting)."""
    return sorted(pid for pid, _parent, argv in _processes(processor, home)
                  if _waiting_spare(argv) and (not ready or _state(argv) == STANDBY))


def pid_alive(pid: int) -> bool:
    """The process exists and is not a zombie (one we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = proc_stat(Path(f"/proc/{pid}"))
    return stat is None or stat[0] != "Z"


def proc_stat(entry: Path) -> tuple[str, int] | None:
    """(state, parent pid) of the process whose /proc directory is ``entry``; None if gone or unreadable."""
    try:
        fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        return fields[0], int(fields[1])
    except (OSError, IndexError, ValueError):
        return None


def _processes(processor: str, home: Path | str) -> Iterator[tuple[int, int, list[bytes]]]:
    """(pid, parent pid, argv) of each live ``pyfi.worker`` process of ``processor`` under ``home``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue  # gone meanwhile, or not ours to read
        stat = proc_stat(entry)
        if stat and stat[0] != "Z" and b"pyfi.worker" in argv and processor.encode() in argv and str(home).encode() in environ:
            yield int(entry.name), stat[1], argv


def _control(argv: list[bytes]) -> Path | None:
    return Path(argv[argv.index(b"--control") + 1].decode()) if b"--control" in argv else None


def _waiting_spare(argv: list[bytes]) -> bool:
    control = _control(argv)
    return b"--standby" in argv and control is not None and not (control.parent / "meta.json").exists()


def _state(argv: list[bytes]) -> str | None:
    control = _control(argv)
    return read_state(control) if control else None
