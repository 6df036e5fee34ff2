"""Fault injection: a worker killed after it served is restarted at once, however often; the agent's log says so."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from network import SAMPLE, Network, make_repo, wait_for
from pyfi.worker.processes import worker_processes

pytestmark = pytest.mark.slow


def echo_processor(net: Network, tmp_path: Path) -> None:
    """Processor p1 with its socket echo."""
    repo = make_repo(tmp_path / "repo", {"sample.py": SAMPLE})
    queue = net.name("q")
    net.cli("add", "queue", "-n", queue)
    net.cli("add", "processor", "-n", "p1", "-m", "sample", "-g", str(repo))
    net.cli("add", "socket", "-n", "echo", "-q", queue, "-pn", "p1", "-t", "echo")


@pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
def test_a_serving_worker_killed_again_and_again_is_restarted_without_backoff(net: Network, tmp_path: Path) -> None:
    echo_processor(net, tmp_path)
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
    for pid in killed:
        wait_for(lambda p=pid: f"(pid {p}) died after serving" in net.agent_log("node1"), 30, f"the death of {pid} logged")
    starts = len(killed) + 1  # every restart is logged, the last one too
    wait_for(lambda: net.agent_log("node1").count("started a worker for p1") >= starts, 60, f"{starts} logged starts")
    log = net.agent_log("node1")
    assert "restarting it now" in log and "retrying in" not in log


@pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
def test_workers_of_a_killed_agent_stop_consuming_until_an_agent_adopts_them(net: Network, tmp_path: Path) -> None:
    echo_processor(net, tmp_path)
    net.start_agent("node1", None, "--no-spares")
    wait_for(lambda: net.processor("p1")["status"] == "running", 90, "p1 running", interval=0.2)
    home = Path(net.env["PYFI_HOME"])
    [main] = worker_processes("p1", home)
    [state] = [path for path in home.glob("agents/node1/run/*/control.state") if path.read_text() == "running"]
    net.stop_agent("node1", signal.SIGKILL)
    wait_for(lambda: state.read_text() == "paused", 60, "the orphaned worker to stop consuming", interval=0.5)
    queued = net.cli("task", "run", "-s", "echo", "-d", '"later"', "--no-wait").stdout.strip()
    assert worker_processes("p1", home) == [main]  # alive, waiting to be adopted
    net.start_agent("node1", None, "--no-spares")
    wait_for(lambda: net.json("ls", "call", "--id", queued)["state"] == "finished", 60, "the adopted worker to serve")
    assert worker_processes("p1", home) == [main] and state.read_text() == "running"
