"""One agent per node: a second agent for a node already run (here or on another host) is refused."""
from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from pyfi.agent import node as node_rows
from pyfi.agent.lock import NodeLock
from pyfi.db.engine import session_scope
from pyfi.db.models import Agent
from pyfi.errors import InUse

HOLD = """
import sys, time
from pathlib import Path
from pyfi.agent.lock import NodeLock
NodeLock(Path(sys.argv[1]), "n1").acquire()
print("held", flush=True)
time.sleep(60)
"""


def test_the_node_lock_is_held_until_its_process_ends(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "n1")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(InUse, match=rf"already runs on this machine \(pid {holder.pid}\)"):
            NodeLock(tmp_path / "n1", "n1").acquire()
    finally:
        holder.kill()
        holder.wait()
    mine = NodeLock(tmp_path / "n1", "n1")  # a killed agent leaves no lock behind
    mine.acquire()
    mine.release()


def test_a_node_run_by_a_live_agent_on_another_host_is_refused(db_url: str, tmp_path: Path) -> None:
    with session_scope(db_url) as session:
        node_rows.register(session, "n1", "host-a", "admin", None, tmp_path)
    with pytest.raises(InUse, match="runs on host-a"), session_scope(db_url) as session:
        node_rows.register(session, "n1", "host-b", "admin", None, tmp_path)
    with session_scope(db_url) as session:  # host-a's agent is lost (stale heartbeat): host-b may take the node
        agent = session.scalar(select(Agent).where(Agent.name == "n1"))
        agent.lastupdated -= dt.timedelta(seconds=4 * node_rows.HEARTBEAT)
    with session_scope(db_url) as session:
        assert node_rows.register(session, "n1", "host-b", "admin", None, tmp_path).hostname == "host-b"
