"""The node and agent rows: registration, heartbeat, machine stats."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from pyfi.db.base import utcnow
from pyfi.db.models import Agent, Node
from pyfi.enums import AgentStatus

HEARTBEAT = 3.0
LOST_AFTER = 3 * HEARTBEAT


def machine_stats(path: Path) -> dict[str, float | int | None]:
    return {
        "cpus": os.cpu_count(),
        "load": round(os.getloadavg()[0], 2),
        "memory": _available_memory(),
        "disk": shutil.disk_usage(path).free,
    }


def _available_memory() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def register(session: Session, name: str, hostname: str, owner: str, port: int | None, workdir: Path) -> Agent:
    """Create or refresh this node's node and agent rows."""
    node = session.scalar(select(Node).where(Node.name == name))
    if node is None:
        node = Node(name=name, hostname=hostname, owner=owner)
        session.add(node)
        session.flush()
    agent = session.scalar(select(Agent).where(Agent.name == name))
    if agent is None:
        agent = Agent(name=name, node_id=node.id, owner=owner)
        session.add(agent)
    agent.hostname, agent.pid, agent.port, agent.status = hostname, os.getpid(), port, AgentStatus.RUNNING
    beat(session, agent, workdir)
    return agent


def beat(session: Session, agent: Agent, workdir: Path) -> None:
    now = utcnow()
    agent.lastupdated = now
    agent.status = AgentStatus.RUNNING
    node = agent.node if agent.node_id else None
    if node is not None:
        for key, value in machine_stats(workdir).items():
            setattr(node, key, value)
        node.lastupdated = now
    session.flush()


def effective_status(agent: Agent) -> AgentStatus:
    """An agent whose heartbeat is stale is shown as lost, whatever its row says."""
    if agent.status == AgentStatus.RUNNING and (utcnow() - agent.lastupdated).total_seconds() > LOST_AFTER:
        return AgentStatus.LOST
    return agent.status
