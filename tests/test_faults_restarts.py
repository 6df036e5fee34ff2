"""Fault injection: a worker killed after it served is restarted at once, however often; the agent's log says so."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from network import SAMPLE, Network, make_repo, wait_for
from pyfi.worker.processes import worker_processes

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
def test_a_serving_worker_killed_again_and_again_is_restarted_without_backoff(net: Network, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"sample.py": SAMPLE})
    queue = net.name("q")
    net.cli("add", "queue", "-n", queue)
    net.cli("add", "processor", "-n", "p1", "-m", "sample", "-g", str(repo))
    net.cli("add", "socket", "-n", "echo", "-q", queue, "-pn", "p1", "-t", "echo")
    net.start_agent("node1")
    home = Path(net.env["PYFI_HOME"])
    killed: list[int] = []
    for round_ in range(5):
        wait_for(lambda: net.processor("p1")["status"] == "running", 90, f"p1 running (round {round_})", interval=0.2)
        assert net.cli("task", "run", "-s", "echo", "-d", f'"{round_}"').stdout.strip() == str(round_)
        [main] = worker_processes("p1", home)
        os.kill(main, signal.SIGKILL)
        killed.append(main)
        shown = wait_for(lambda: net.processor("p1"), 30, "p1 shown")  # never 'retrying in 30 s' after five deaths
        assert "retrying in" not in (shown["error"] or ""), shown
    wait_for(lambda: net.processor("p1")["status"] == "running", 90, "p1 running after the last kill", interval=0.2)
    log = net.agent_log("node1")
    for pid in killed:
        assert f"(pid {pid}) died after serving" in log and "restarting it now" in log, log[-2000:]
