"""What an agent shows of a processor when its worker cannot start, starts slowly, or its agent stops."""
from __future__ import annotations

import re
import time
from pathlib import Path

from sqlalchemy import select

from pyfi.agent import node as node_rows
from pyfi.agent.agent import SLOW_START, Agent
from pyfi.agent.deploy import Deployed, source_key
from pyfi.agent.supervisor import Handle
from pyfi.config import resolve
from pyfi.db.engine import session_scope
from pyfi.db.models import Processor
from pyfi.enums import AgentStatus, ProcessorStatus


def agent_in(tmp_path: Path, name: str = "n1") -> Agent:
    return Agent(resolve({}, {"PYFI_HOME": str(tmp_path)}), name=name, workdir=tmp_path / name, spares=2)


def processor(name: str = "p1") -> Processor:
    return Processor(id=f"id-{name}", name=name, module="sample", gitrepo="/repos/x", workers=1, retries=0,
                     requested_status=ProcessorStatus.RUNNING, status=ProcessorStatus.STARTING, sockets=[])


def test_a_worker_that_cannot_be_started_is_its_processors_error_only(tmp_path: Path) -> None:
    from pyfi.db import migrate

    agent, p = agent_in(tmp_path), processor()
    migrate.upgrade(agent.settings.db)  # the agent makes the worker's credentials (its signing key) first
    with session_scope(agent.settings.db) as session:
        session.add(processor())
    missing = tmp_path / "no-such-venv" / "bin" / "python"
    deployed = Deployed(source_key(p), "sha", tmp_path, missing, 0.0)
    assert agent.start_worker(p, deployed) is None  # no exception: the agent goes on with the others
    assert p.status == ProcessorStatus.ERROR and "cannot start its worker" in p.error and str(missing) in p.error
    assert p.id in agent.crashes and agent.start_worker(p, deployed) is None  # backing off, not retried at once


def test_a_crashing_processor_gets_no_spare(tmp_path: Path) -> None:
    agent, p = agent_in(tmp_path), processor()
    agent.deployer.deployed[p.id] = Deployed(source_key(p), "sha", tmp_path, tmp_path / "python", 0.0)
    assert list(agent.spare_keys([p])) == [p.id]
    agent.back_off(p.id)  # its worker died: a spare would die the same way, and be booted again and again
    assert agent.spare_keys([p]) == {}


def test_a_worker_slow_to_come_up_shows_what_it_logged(tmp_path: Path) -> None:
    agent = agent_in(tmp_path)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "worker.log").write_text("booting\nERROR consumer: Cannot connect to redis://localhost:1/0: refused.\n\n")
    handle = Handle("id-p1", "p1", "sha", "sig", 1, str(run_dir), started=time.time() - SLOW_START - 1)
    shown = agent.slow_start(handle, ProcessorStatus.STARTING)
    assert shown.startswith("worker not up after") and shown.endswith("Cannot connect to redis://localhost:1/0: refused.")
    assert agent.slow_start(handle, ProcessorStatus.RUNNING) is None
    handle.started = time.time()
    assert agent.slow_start(handle, ProcessorStatus.STARTING) is None


def test_a_stopping_agent_shows_what_no_other_agent_runs_as_stopped(db_url: str, tmp_path: Path) -> None:
    with session_scope(db_url) as session:
        node_rows.register(session, "n1", "host", "admin", None, tmp_path)
        session.add_all([processor("mine"), processor("shared"), processor("broken")])
        session.flush()
        pinned = session.get(Processor, "id-mine")
        pinned.hostname, pinned.status = "n1", ProcessorStatus.RUNNING
        session.get(Processor, "id-broken").status = ProcessorStatus.ERROR
        session.get(Processor, "id-shared").status = ProcessorStatus.RUNNING
        node_rows.register(session, "n2", "host", "admin", None, tmp_path)  # n2 runs every unpinned processor
        node_rows.release(session, "n1", list(session.scalars(select(Processor))))
    with session_scope(db_url) as session:
        status = {p.name: (p.status, p.error) for p in session.scalars(select(Processor))}
    assert status["mine"][0] == ProcessorStatus.STOPPED and "no agent runs it" in status["mine"][1]
    assert status["shared"] == (ProcessorStatus.RUNNING, None)
    assert status["broken"][0] == ProcessorStatus.ERROR


def test_workers_show_the_pool_size_the_agent_gives_them(tmp_path: Path) -> None:
    agent = Agent(resolve({}, {"PYFI_HOME": str(tmp_path)}), name="n1", workdir=tmp_path / "n1",
                  worker_args=("--concurrency", "1", "--prefetch", "4"))
    assert agent.pool_size == 1 and agent_in(tmp_path, "n2").pool_size is None


def test_processors_of_an_agent_that_stopped_heartbeating_are_shown_lost(db_url: str, tmp_path: Path, run_cli) -> None:
    """An agent killed with SIGKILL writes nothing more: its stale heartbeat is the only sign, as for ``ls agents``."""
    import datetime as dt
    import json

    with session_scope(db_url) as session:
        killed = node_rows.register(session, "n1", "host", "admin", None, tmp_path)
        session.add_all([processor("pinned"), processor("everywhere"), processor("idle")])
        session.flush()
        for name, status in (("pinned", ProcessorStatus.RUNNING), ("everywhere", ProcessorStatus.PAUSED),
                             ("idle", ProcessorStatus.STOPPED)):
            row = session.scalar(select(Processor).where(Processor.name == name))
            row.status, row.hostname = status, "n1" if name == "pinned" else None
        killed.lastupdated -= dt.timedelta(seconds=node_rows.LOST_AFTER + 1)
    shown = run_cli("ls", "processor", "-n", "pinned")
    assert shown.exit_code == 0 and re.search(r"\|\s+lost\s+\|", shown.output), shown.output
    assert "Error: no live agent runs it: the heartbeat of agent n1 stopped" in shown.output
    listing = json.loads(run_cli("ls", "processors", "--json").output)
    status = {row["name"]: (row["status"], row["error"]) for row in listing["rows"]}
    assert status["everywhere"][0] == "lost" and "heartbeat of every agent stopped" in status["everywhere"][1]
    assert status["idle"] == ("stopped", None)
    run_cli("update", "processor", "-n", "pinned", "-h", "ghost")  # a node where no agent ever ran
    shown = run_cli("ls", "processor", "-n", "pinned").output
    assert "Error: no agent runs it: it is pinned to node 'ghost', where no agent has registered" in shown, shown
    with session_scope(db_url) as session:  # an agent started with -q monitors: it runs no processor
        node_rows.register(session, "mon", "host", "admin", None, tmp_path, AgentStatus.MONITORING)
    run_cli("update", "processor", "-n", "pinned", "-h", "mon")
    shown = run_cli("ls", "processor", "-n", "pinned").output
    assert "Error: no agent runs it: the agent of node 'mon', where it is pinned, only monitors" in shown, shown
    assert re.search(r"\|\s+monitoring\s+\|", run_cli("ls", "agent", "-n", "mon").output)
    run_cli("update", "processor", "-n", "pinned", "-h", "n1")
    with session_scope(db_url) as session:  # shown, never stored: a live agent again shows what it writes
        node_rows.register(session, "n1", "host", "admin", None, tmp_path)
        assert session.scalar(select(Processor.status).where(Processor.name == "pinned")) == ProcessorStatus.RUNNING
    assert re.search(r"\|\s+running\s+\|", run_cli("ls", "processor", "-n", "pinned").output)


def test_a_processor_asked_to_run_on_a_node_no_agent_can_serve_is_shown_lost(db_url: str, run_cli) -> None:
    """Not ``ready`` for good: nothing would ever start it (`-h ghost`, then `proc start`)."""
    with session_scope(db_url) as session:
        added = processor("pinned")
        added.status = added.requested_status = ProcessorStatus.READY  # as `add processor` leaves it
        session.add(added)
    assert run_cli("update", "processor", "-n", "pinned", "-h", "ghost").exit_code == 0
    assert re.search(r"\|\s+ready\s+\|", run_cli("ls", "processor", "-n", "pinned").output)  # not asked to run yet
    assert run_cli("proc", "-n", "pinned", "start").exit_code == 0
    shown = run_cli("ls", "processor", "-n", "pinned").output
    assert re.search(r"\|\s+lost\s+\|", shown), shown
    assert "Error: no agent runs it: it is pinned to node 'ghost', where no agent has registered" in shown, shown
