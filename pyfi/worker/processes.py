"""The worker processes of a processor on this machine, found in /proc (Linux), not in the database.

For tools that must see what really runs (the tests, the reaction
benchmark). A worker's pool processes and its sidecar share its command
line, so only the processes whose parent is not one of the matches are
returned: the workers themselves, or whatever is left of one after its main
process died.
"""
from __future__ import annotations

from pathlib import Path


def worker_processes(processor: str, home: Path | str) -> list[int]:
    """Pids of live ``pyfi.worker`` processes for ``processor`` started under ``PYFI_HOME=home``."""
    found: dict[int, int] = {}  # pid -> parent pid
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            environ = (entry / "environ").read_bytes()
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if stat[0] != "Z" and b"pyfi.worker" in argv and processor.encode() in argv and str(home).encode() in environ:
            found[int(entry.name)] = int(stat[1])
    return sorted(pid for pid, parent in found.items() if parent not in found)
