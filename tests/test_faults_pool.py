"""Fault injection: pool processes killed under load on the embedded default; every call still comes back."""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from network import SAMPLE, Network, make_repo, pool_processes, results, wait_for
from pyfi.config import resolve
from pyfi.messaging.app import make_app
from pyfi.worker.processes import worker_processes

pytestmark = pytest.mark.slow

CALLS = 200
RATE = 30  # calls a second
KILLS = 6


def send_paced(net: Network, socket_name: str, sent: list[str]) -> None:
    """Send CALLS calls with the Python client, RATE a second, noting their ids in ``sent``."""
    from pyfi.client import Context, Socket

    context = Context(resolve({}, {k: v for k, v in net.env.items() if k.startswith("PYFI_")}))
    socket, started = Socket(socket_name, context=context), time.monotonic()
    for number in range(CALLS):
        time.sleep(max(0.0, started + number / RATE - time.monotonic()))
        sent.append(socket.delay(number).id)
    context.close()


@pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
def test_pool_processes_killed_under_load_lose_no_call(net: Network, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"sample.py": SAMPLE})
    queue = net.name("q")
    net.cli("add", "queue", "-n", queue)
    net.cli("add", "processor", "-n", "p1", "-m", "sample", "-g", str(repo), "-w", "2")
    net.cli("add", "socket", "-n", "echo", "-q", queue, "-pn", "p1", "-t", "echo")
    net.start_agent("node1", None, "--no-spares")
    wait_for(lambda: net.processor("p1")["status"] == "running", 90, "p1 running", interval=0.3)
    home = Path(net.env["PYFI_HOME"])
    [main] = wait_for(lambda: worker_processes("p1", home), 30, "the worker process")

    sent: list[str] = []
    sender = threading.Thread(target=send_paced, args=(net, "echo", sent))
    sender.start()
    killed = 0
    while killed < KILLS:  # (under load: the sender runs for CALLS / RATE seconds)
        victims = wait_for(lambda: pool_processes(main), 30, "a pool process")
        os.kill(victims[0], signal.SIGKILL)
        killed += 1
        wait_for(lambda v=victims[0]: v not in pool_processes(main) and pool_processes(main), 30, "a new pool process")
    sender.join()
    last_sent = time.monotonic()
    app = make_app(resolve(env=net.env))
    back = wait_for(lambda: (lambda r: r if len(r) == CALLS else None)(results(app, sent)), 120,
                    f"all {CALLS} calls back after {killed} kills", interval=1.0)
    print(f"\n{killed} pool processes killed: {len(back)} of {CALLS} calls back "  # bench/README.md
          f"{time.monotonic() - last_sent:.1f} s after the last send")
    assert sorted(int(v) for v in back.values()) == list(range(CALLS))
    assert worker_processes("p1", home) == [main]  # the same worker served throughout
