"""What a stopping agent says and does, and what a deleted processor leaves on its node.

Real agents and workers in subprocesses, code from a real git repository,
on the embedded default and on PostgreSQL + Redis.
"""
from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from network import Network, make_repo, wait_for
from sqlalchemy import select

from pyfi.agent.supervisor import STOP_GRACE
from pyfi.db.engine import session_scope
from pyfi.db.models import Call
from pyfi.worker.processes import worker_processes

pytestmark = pytest.mark.slow

#: ``hold`` notes each run in PYFI_TEST_MARKER, then runs until the file it is given exists
HOLDING = '''
import os, time

def hold(release):
    with open(os.environ["PYFI_TEST_MARKER"], "a") as fh:
        fh.write(f"{os.getpid()}\\n")
    while not os.path.exists(release):
        time.sleep(0.05)
    return "released"
'''


def holding_processor(net: Network, processor: str = "p") -> str:
    """A processor running HOLDING with one socket on ``hold``: the socket's name."""
    repo = make_repo(net.tmp / f"repo-{processor}", {"holding.py": HOLDING, "name.txt": processor})  # a commit of its own
    queue, socket = net.name(f"q-{processor}"), net.name(f"hold-{processor}")
    net.cli("add", "queue", "-n", queue)
    net.cli("add", "processor", "-n", processor, "-m", "holding", "-g", str(repo))
    net.cli("add", "socket", "-n", socket, "-q", queue, "-pn", processor, "-t", "hold")
    return socket


def runs(marker: Path) -> int:
    return len(marker.read_text().split()) if marker.exists() else 0


def call_state(net: Network, call_id: str) -> str | None:
    with session_scope(net.db_url) as session:
        state = session.scalar(select(Call.state).where(Call.id == call_id))
    return None if state is None else str(state)


def test_a_second_signal_stops_the_agent_at_once_and_the_call_runs_again(net: Network, tmp_path: Path) -> None:
    socket = holding_processor(net)
    marker, release = tmp_path / "runs.txt", tmp_path / "release"
    agent = net.start_agent("node1", {"PYFI_TEST_MARKER": str(marker)})
    net.wait_status("p", "running", 60)
    call_id = net.cli("task", "run", "-s", socket, "-d", json.dumps(str(release)), "--no-wait").stdout.strip()
    wait_for(lambda: runs(marker) == 1, 30, what="the call to start")
    agent.send_signal(signal.SIGINT)
    wait_for(lambda: "stopping: waiting up to" in net.agent_log("node1"), 20, what="the agent to say what it waits for")
    said = net.agent_log("node1")
    assert f"waiting up to {STOP_GRACE:.0f} s for 1 worker to finish their running calls" in said, said
    assert "(Ctrl-C again to stop at once)" in said, said
    agent.send_signal(signal.SIGINT)
    assert agent.wait(timeout=60) == 0, net.agent_log("node1")
    net.agents.pop("node1")
    said = net.agent_log("node1")  # killed on the second signal, not after the workers' stop grace
    assert "stopping at once: killed 1 worker" in said and "did not stop within" not in said, said
    release.touch()
    net.start_agent("node1", {"PYFI_TEST_MARKER": str(marker)})
    wait_for(lambda: call_state(net, call_id) == "finished", 60, what="the call to run again and finish", interval=0.2)
    assert runs(marker) == 2


def test_the_agent_removes_the_checkout_of_a_deleted_processor(net: Network, tmp_path: Path) -> None:
    holding_processor(net, "gone")
    holding_processor(net, "kept")
    net.start_agent("node1", {"PYFI_TEST_MARKER": str(tmp_path / "runs.txt")})
    for name in ("gone", "kept"):
        net.wait_status(name, "running", 60)
    workdir = Path(net.env["PYFI_HOME"]) / "agents" / "node1"
    venvs = {name: venv_of_checkout(workdir, name) for name in ("gone", "kept")}
    assert (workdir / "repos" / "gone").is_dir() and all(v is not None for v in venvs.values()), venvs
    net.cli("delete", "processor", "-n", "gone")
    wait_for(lambda: not (workdir / "repos" / "gone").exists(), 60, what="the deleted processor's checkout to go")
    assert not worker_processes("gone", Path(net.env["PYFI_HOME"])), "removed while its worker still ran"
    assert not venvs["gone"].exists() or venvs["gone"] == venvs["kept"]
    assert (workdir / "repos" / "kept").is_dir() and venvs["kept"].is_dir()
    net.wait_status("kept", "running", 60)


def venv_of_checkout(workdir: Path, processor: str) -> Path | None:
    """The environment built for the processor's checkout (its stamp names the checkout)."""
    from pyfi.agent.leftovers import venvs_built_in

    found = venvs_built_in(workdir / "venvs", (workdir / "repos" / processor).resolve())
    return found[0] if found else None
