"""CPU seconds from /proc: a side's worker processes (by role) and the database server processes serving it."""
from __future__ import annotations

import collections
import os
from pathlib import Path


def cpu_seconds(pid: int) -> float:
    """user+system CPU seconds of one process (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime after the command


def machine_cpu_seconds() -> float:
    """Busy CPU seconds of the whole machine so far (every core: user, nice, system, irq, softirq, steal)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def group_pids(pgid: int) -> list[int]:
    """Live processes of a process group (a worker and its pool children)."""
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(fields[2]) == pgid:
                pids.append(int(entry.name))
    return pids


#: ``comm`` of the broker / result backend servers a benchmark may run against
SERVER_NAMES = ("redis-server", "beam.smp")


def server_pids() -> list[int]:
    """Processes of the local Redis or RabbitMQ server (their CPU is part of every call)."""
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                comm = Path(entry.path, "comm").read_text().strip()
            except OSError:
                continue
            if comm in SERVER_NAMES:
                pids.append(int(entry.name))
    return pids


def database_pids(db_url: str) -> list[int]:
    """PostgreSQL server processes serving the benchmark's database (none on SQLite)."""
    if not db_url.startswith("postgresql"):
        return []
    from sqlalchemy import text

    from pyfi.db.engine import get_engine

    with get_engine(db_url).connect() as conn:
        return list(conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")).scalars())


class CpuMeter:
    """CPU seconds spent by a side's worker processes and the database server processes on its behalf."""

    def __init__(self, worker_pid: int, db_url: str | None) -> None:
        self.worker_pid, self.db_url = worker_pid, db_url

    def sample(self) -> dict[int, float]:
        pids = group_pids(self.worker_pid) + (database_pids(self.db_url) if self.db_url else [])
        return {pid: cpu_seconds(pid) for pid in pids}

    def used(self, before: dict[int, float], worker: bool) -> float:
        after = self.sample()
        group = set(group_pids(self.worker_pid))
        return sum(after[p] - before.get(p, 0.0) for p in after if (p in group) == worker)

    def used_by_role(self, before: dict[int, float]) -> dict[str, float]:
        """The worker's CPU seconds since ``before`` by process: main, pool, sidecar (pyfi's)."""
        roles: dict[str, float] = collections.Counter()
        for pid in group_pids(self.worker_pid):
            roles[process_role(pid, self.worker_pid)] += cpu_seconds(pid) - before.get(pid, 0.0)
        return roles


def process_role(pid: int, worker_pid: int) -> str:
    if pid == worker_pid:
        return "main"
    try:
        return "sidecar" if Path(f"/proc/{pid}/comm").read_text().strip() == "pyfi-sidecar" else "pool"
    except OSError:
        return "pool"
