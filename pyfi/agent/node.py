"""The node and agent rows: registration, heartbeat, machine stats."""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from pyfi.db.base import utcnow
from pyfi.db.models import Agent, Node, Processor, Worker
from pyfi.enums import AgentStatus, ProcessorStatus, WorkerStatus
from pyfi.errors import InUse

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


#: an agent with a fresh heartbeat is one of these (a stale one is lost)
ALIVE = (AgentStatus.RUNNING, AgentStatus.MONITORING)


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


def effective_status(agent: Agent) -> AgentStatus:
    """An agent whose heartbeat is stale is shown as lost, whatever its row says."""
    if agent.status in ALIVE and (utcnow() - agent.lastupdated).total_seconds() > LOST_AFTER:
        return AgentStatus.LOST
    return agent.status


#: what an agent writes while it runs a processor's worker
ACTIVE = (ProcessorStatus.RUNNING, ProcessorStatus.PAUSED, ProcessorStatus.STARTING)


def live_agents(session: Session, excluding: str | None = None) -> set[str]:
    """The names of the agents that run processors and whose heartbeat is fresh (not those of ``agent start -q``)."""
    return {a.name for a in session.scalars(select(Agent).where(Agent.name != excluding))
            if effective_status(a) == AgentStatus.RUNNING}


def runs_on(processor: Processor, agents: set[str]) -> bool:
    """Whether one of *agents* runs the processor: a pinned one only on its node, an unpinned one on every agent."""
    return processor.hostname in agents if processor.hostname else bool(agents)


def release(session: Session, agent_name: str, processors: list[Processor]) -> None:
    """An agent stops: the processors it ran that no other live agent runs are shown stopped.

    Without this ``ls processors`` kept saying 'running' with nothing running.
    A processor in error keeps its error: it still says what is wrong.
    """
    others = live_agents(session, excluding=agent_name)
    for processor in processors:
        if not runs_on(processor, others) and processor.status in ACTIVE:
            processor.status = ProcessorStatus.STOPPED
            processor.error = f"no agent runs it: agent {agent_name} stopped (start one with pyfi agent start)"


def shown_status(processor: Processor) -> tuple[ProcessorStatus, str | None]:
    """The status and error ``ls`` shows: 'lost' when no live agent runs it.

    Also for one asked to run but pinned to a node no agent can run it on
    (none ever registered there, or its agent only monitors): nothing
    would ever start it, and its status would show ``ready`` for good.

    An agent killed with SIGKILL, or cut off from the database, cannot write
    that it no longer runs anything (a graceful stop does, see ``release``);
    its heartbeat going stale is the only sign, as for ``ls agents``. Its
    workers may still be serving: a new agent for the node adopts them.
    """
    session = object_session(processor)
    waiting = processor.status not in ACTIVE and processor.requested_status in ACTIVE  # asked to run, not started
    if session is None or not (processor.status in ACTIVE or waiting and processor.hostname):
        return processor.status, processor.error
    agents = _agents_now(session)
    if runs_on(processor, {name for name, status in agents.items() if status == AgentStatus.RUNNING}):
        return processor.status, processor.error
    pinned = processor.hostname
    if waiting and pinned in agents and agents[pinned] != AgentStatus.MONITORING:
        return processor.status, processor.error  # its agent is away (stopped, or lost): it starts it when back
    if pinned and pinned not in agents:
        why = (f"no agent runs it: it is pinned to node {pinned!r}, where no agent has registered "
               f"(start one there with pyfi agent start -n {pinned}, or change -h/--hostname)")
    elif pinned and agents[pinned] == AgentStatus.MONITORING:
        why = (f"no agent runs it: the agent of node {pinned!r}, where it is pinned, only monitors (agent start -q); "
               f"start it without -q, or change -h/--hostname")
    else:
        where = f"agent {pinned}" if pinned else "every agent"
        why = (f"no live agent runs it: the heartbeat of {where} stopped, and workers it started may still serve "
               f"(see pyfi ls agents; pyfi agent start on that node adopts them)")
    return ProcessorStatus.LOST, why


def _agents_now(session: Session) -> dict[str, AgentStatus]:
    """Every agent's name and effective status, asked once a second at most per session (a listing asks per row)."""
    asked, agents = session.info.get("pyfi.agents", (-1.0, {}))
    if time.monotonic() - asked > 1.0:
        agents = {a.name: effective_status(a) for a in session.scalars(select(Agent))}
        session.info["pyfi.agents"] = (time.monotonic(), agents)
    return agents


def worker_status(status: ProcessorStatus) -> WorkerStatus:
    """A worker row's status for what its processor is observed doing."""
    return {ProcessorStatus.PAUSED: WorkerStatus.PAUSED, ProcessorStatus.RUNNING: WorkerStatus.RUNNING}.get(
        status, WorkerStatus.STARTING)


def new_worker_row(session: Session, agent: Agent, processor_id: str, processor: str, node: str) -> Worker:
    row = Worker(name=f"{processor}@{node}", agent_id=agent.id, processor_id=processor_id, concurrency=1,
                 owner=agent.owner)
    session.add(row)
    return row
