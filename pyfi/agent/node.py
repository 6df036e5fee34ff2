"""The node and agent rows: registration, heartbeat, machine stats.

What a heartbeat means for ``ls`` (an agent, or a processor no live agent
runs, shown lost) is derived in :mod:`pyfi.core.liveness`.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from pyfi.core.liveness import ACTIVE, ALIVE, effective_status, live_agents, runs_on
from pyfi.core.liveness import HEARTBEAT, LOST_AFTER  # noqa: F401 - the agent beats every node.HEARTBEAT seconds
from pyfi.db.base import utcnow
from pyfi.db.models import Agent, Node, Processor, Worker
from pyfi.enums import AgentStatus, ProcessorStatus, WorkerStatus
from pyfi.errors import InUse


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


def register(session: Session, name: str, hostname: str, owner: str, port: int | None, workdir: Path,
             status: AgentStatus = AgentStatus.RUNNING) -> Agent:
    """Create or refresh this node's node and agent rows (*status*: MONITORING for an agent that runs no processor)."""
    node = session.scalar(select(Node).where(Node.name == name))
    if node is None:
        node = Node(name=name, hostname=hostname, owner=owner)
        session.add(node)
        session.flush()
    agent = session.scalar(select(Agent).where(Agent.name == name))
    if agent is None:
        agent = Agent(name=name, node_id=node.id, owner=owner)
        session.add(agent)
    elif agent.hostname != hostname and effective_status(agent) in ALIVE:
        # (on this machine the node's lock already answers: see pyfi.agent.lock)
        raise InUse(f"an agent for node {name!r} runs on {agent.hostname} (heartbeat "
                    f"{(utcnow() - agent.lastupdated).total_seconds():.0f} s ago)",
                    "stop it first, or give this agent another -n/--name")
    agent.hostname, agent.pid, agent.port = hostname, os.getpid(), port
    beat(session, agent, workdir, status)
    return agent


def beat(session: Session, agent: Agent, workdir: Path, status: AgentStatus = AgentStatus.RUNNING) -> None:
    now = utcnow()
    agent.lastupdated = now
    agent.status = status
    node = agent.node if agent.node_id else None
    if node is not None:
        for key, value in machine_stats(workdir).items():
            setattr(node, key, value)
        node.lastupdated = now
    session.flush()


def release(session: Session, agent_name: str, processors: list[Processor]) -> None:
    """An agent stops: the processors it ran that no other live agent runs are shown stopped.

    A processor in error keeps its error: it still says what is wrong.
    """
    others = live_agents(session, excluding=agent_name)
    for processor in processors:
        if not runs_on(processor, others) and processor.status in ACTIVE:
            processor.status = ProcessorStatus.STOPPED
            processor.error = f"no agent runs it: agent {agent_name} stopped (start one with pyfi agent start)"


def worker_status(status: ProcessorStatus) -> WorkerStatus:
    """A worker row's status for what its processor is observed doing."""
    return {ProcessorStatus.PAUSED: WorkerStatus.PAUSED, ProcessorStatus.RUNNING: WorkerStatus.RUNNING}.get(
        status, WorkerStatus.STARTING)


def new_worker_row(session: Session, agent: Agent, processor_id: str, processor: str, node: str) -> Worker:
    row = Worker(name=f"{processor}@{node}", agent_id=agent.id, processor_id=processor_id, concurrency=1,
                 owner=agent.owner)
    session.add(row)
    return row
