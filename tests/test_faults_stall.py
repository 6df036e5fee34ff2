"""Fault injection: a worker whose pool processes all freeze holds calls no one runs; its agent restarts it."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from network import SAMPLE, Network, make_repo, pool_processes, results, wait_for
from pyfi.config import resolve
from pyfi.messaging.app import make_app
from pyfi.worker.processes import worker_processes
from pyfi.worker.progress import WaitClock

pytestmark = pytest.mark.slow

CALLS = 6
STALLED_AFTER = 8


def workers_of(net: Network, processor: str) -> list[dict]:
    return [w for w in net.json("ls", "workers", "--rows", "100")["rows"] if w.get("processor") == processor]


@pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
def test_a_frozen_pool_is_shown_hung_and_its_worker_restarted(net: Network, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"sample.py": SAMPLE})
    queue = net.name("q")
    net.cli("add", "queue", "-n", queue)
    net.cli("add", "processor", "-n", "p1", "-m", "sample", "-g", str(repo), "-w", "2")
    net.cli("add", "socket", "-n", "echo", "-q", queue, "-pn", "p1", "-t", "echo")
    net.start_agent("node1", None, "--no-spares", "--stalled-after", str(STALLED_AFTER))
    net.wait_status("p1", "running", 90)
    home = Path(net.env["PYFI_HOME"])
    [main] = wait_for(lambda: worker_processes("p1", home), 30, "the worker process")
    frozen = wait_for(lambda: (lambda found: found if len(found) == 2 else None)(pool_processes(main)), 30,
                      "two pool processes")
    frozen_at = time.monotonic()
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)  # alive, holding no lock, taking nothing: the worker holds what it receives

    sent = [net.cli("task", "run", "-s", "echo", "-d", str(n), "--no-wait").stdout.strip() for n in range(CALLS)]

    wait_for(lambda: any(w["status"] == "hung" for w in workers_of(net, "p1")), 60, "ls workers showing p1's worker hung")
    assert "worker hung" in (net.processor("p1")["error"] or "")
    wait_for(lambda: worker_processes("p1", home) and worker_processes("p1", home) != [main], 60, "a new worker")
    log = net.agent_log("node1")
    assert "is hung" in log
    app = make_app(resolve(env=net.env))
    back = wait_for(lambda: (lambda r: r if len(r) == CALLS else None)(results(app, sent)), 90,
                    f"all {CALLS} calls back from the new worker", interval=0.5)
    assert sorted(int(v) for v in back.values()) == list(range(CALLS))
    print(f"\nfrozen pool: all {CALLS} calls back {time.monotonic() - frozen_at:.1f} s after the freeze "  # bench/README.md
          f"(--stalled-after {STALLED_AFTER})")
    wait_for(lambda: [w["status"] for w in workers_of(net, "p1")] == ["running"], 30, "the new worker running")
    assert all(not Path(f"/proc/{pid}").exists() or _zombie(pid) for pid in frozen)  # the frozen pool died with it


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (OSError, IndexError):
        return True


def test_calls_waiting_behind_busy_processes_are_no_hang() -> None:
    clock = WaitClock()
    assert clock.waited({"a"}, pool_free=False, now=0.0) == 0.0  # every process runs a (long) call
    assert clock.waited({"a", "b"}, pool_free=False, now=100.0) == 0.0
    assert clock.waited({"a", "b"}, pool_free=True, now=101.0) == 0.0  # a process is free from now on
    assert clock.waited({"b"}, pool_free=True, now=104.0) == 3.0  # "a" was taken; "b" still waits
    assert clock.waited({"c"}, pool_free=True, now=105.0) == 0.0  # taken; a new call arrives: progress
    assert clock.waited(set(), pool_free=True, now=200.0) == 0.0
