"""Who is alive: heartbeats, and the status ``ls`` shows for agents, processors and workers.

A row says what its process last wrote; a process killed with SIGKILL, or cut
off from the database, cannot write that it stopped. Its heartbeat (the
row's ``lastupdated``) going stale is the only sign, so an agent, a processor
no live agent runs, and a hand-started worker are shown *lost* then. Agents
beat every :data:`HEARTBEAT` seconds (``pyfi.agent.node``), hand-started
workers refresh their row as often (``pyfi.worker.presence``), and ``ls``
(``pyfi.cli.render``) shows what this module derives.
"""
from __future__ import annotations

import time

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from pyfi.db.base import utcnow
from pyfi.db.models import Agent, Processor, Worker
from pyfi.enums import AgentStatus, ProcessorStatus, WorkerStatus

#: seconds between two heartbeats of an agent, or two refreshes of a hand-started worker's row
HEARTBEAT = 3.0
#: a row not refreshed for this long belongs to a process that is gone
LOST_AFTER = 3 * HEARTBEAT

#: an agent with a fresh heartbeat is one of these (a stale one is lost)
ALIVE = (AgentStatus.RUNNING, AgentStatus.MONITORING)

#: what an agent writes while it runs a processor's worker
ACTIVE = (ProcessorStatus.RUNNING, ProcessorStatus.PAUSED, ProcessorStatus.STARTING)


def effective_status(agent: Agent) -> AgentStatus:
    """An agent whose heartbeat is stale is shown as lost, whatever its row says."""
    if agent.status in ALIVE and (utcnow() - agent.lastupdated).total_seconds() > LOST_AFTER:
        return AgentStatus.LOST
    return agent.status


def live_agents(session: Session, excluding: str | None = None) -> set[str]:
    """The names of the agents that run processors and whose heartbeat is fresh (not those of ``agent start -q``)."""
    return {a.name for a in session.scalars(select(Agent).where(Agent.name != excluding))
            if effective_status(a) == AgentStatus.RUNNING}


def runs_on(processor: Processor, agents: set[str]) -> bool:
    """Whether one of *agents* runs the processor: a pinned one only on its node, a deployed one on its deployments'
    nodes, any other on every agent (of a node no scheduler places on)."""
    if processor.hostname:
        return processor.hostname in agents
    if processor.deployments:
        return any(d.hostname in agents for d in processor.deployments)
    return bool(agents)


def shown_processor_status(processor: Processor) -> tuple[ProcessorStatus, str | None]:
    """The status and error ``ls`` shows: 'lost' when no live agent runs it.

    Also for one asked to run but pinned to a node no agent can run it on
    (none ever registered there, or its agent only monitors): nothing
    would ever start it, and its status would show ``ready`` for good.

    An agent killed with SIGKILL, or cut off from the database, cannot write
    that it no longer runs anything (a graceful stop does, see
    ``pyfi.agent.node.release``); its heartbeat going stale is the only sign,
    as for ``ls agents``. Its workers may still be serving: a new agent for
    the node adopts them.
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


def shown_worker_status(worker: Worker) -> WorkerStatus:
    """Lost for a hand-started worker's row that its worker stopped refreshing (killed, or its machine gone)."""
    if worker.agent_id is None and (utcnow() - worker.lastupdated).total_seconds() > LOST_AFTER:
        return WorkerStatus.LOST
    return worker.status
