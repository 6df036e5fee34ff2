"""Running an agent in the foreground: signals, health endpoint, clean start."""
from __future__ import annotations

import errno
import json
import logging
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import click

from pyfi.agent import MAX_SPARES, STALLED_AFTER
from pyfi.config import Settings
from pyfi.errors import PyfiError


def start_agent(settings: Settings, name: str | None, port: int | None, clean: bool, *,
                worker_args: tuple[str, ...] = (), run_as: str | None = None, monitor_only: bool = False,
                spares: int = MAX_SPARES, workdir: Path | None = None, stalled_after: float = STALLED_AFTER) -> None:
    from pyfi.agent.agent import Agent
    from pyfi.core.access import Actor, require
    from pyfi.core.worker_logins import check_agent_login
    from pyfi.db.engine import check_initialized, session_scope
    from pyfi.enums import Right
    from pyfi.private import secure_home, undumpable

    log_what_it_does()
    undumpable()  # it holds the database owner's login: no other process of its user may read its memory
    secure_home(settings.home)
    check_initialized(settings.db)
    with session_scope(settings.db) as session:
        require(session, Actor(settings.user), Right.START_AGENT)
        check_agent_login(session)
    server = bind_health(port) if port else None  # before anything is created: a taken port changes nothing
    agent = Agent(settings, name=name, port=port, worker_args=worker_args, run_as=run_as, monitor_only=monitor_only,
                  spares=spares, clean=clean, workdir=workdir,  # it cleans once it holds its node: never a running agent's dir
                  say=lambda line: click.echo(line, err=True), stalled_after=stalled_after)
    stop = lambda *_: agent.ask_to_stop()  # noqa: E731 - signal handler: the second one stops at once
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if server is not None:
        serve_health(server, agent)
    try:
        agent.start()  # refused when another agent holds the node: then nothing said it runs
        click.echo(f"Agent {agent.name} running (work dir {agent.workdir}); Ctrl-C or SIGTERM stops it and its workers, "
                   "a second one at once")
        agent.loop()
    finally:
        if server is not None:
            server.shutdown()
    click.echo(f"Agent {agent.name} stopped")


def log_what_it_does() -> None:
    """The agent's log (its standard error): every worker it starts, loses, restarts or gives calls back for, timed."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    agent_log = logging.getLogger("pyfi")
    agent_log.addHandler(handler)
    agent_log.setLevel(logging.INFO)


def bind_health(port: int) -> ThreadingHTTPServer:
    """Listen on 127.0.0.1:port for the health endpoint (served once the agent exists)."""
    try:
        return ThreadingHTTPServer(("127.0.0.1", port), Health)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PyfiError(f"port {port} is in use", "choose another -p/--port") from exc
        raise PyfiError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}", "choose another -p/--port") from exc


def serve_health(server: ThreadingHTTPServer, agent: Any) -> None:
    """Answer GET / with JSON: the agent's name, the workers it supervises, the spares it keeps, what it deploys,
    whether it holds the network's beat and whether it has its database."""
    server.agent = agent  # type: ignore[attr-defined] - read by Health for each request
    threading.Thread(target=server.serve_forever, daemon=True, name="pyfi-health").start()


class Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path.split("?")[0] != "/":  # a monitor probing /healthz must not take any answer for health
            self.send_error(404, "the agent's health is at /")
            return
        agent = self.server.agent  # type: ignore[attr-defined]
        body = json.dumps({
            "agent": agent.name,
            "workers": {h.processor: {"pid": h.pid, "alive": h.alive()} for h in list(agent.handles.values())},
            "spares": {s.processor: {"pid": s.proc.pid, "ready": s.ready()} for s in list(agent.spares.values())},
            "deploying": agent.deployer.deploying(),
            "beat": agent.beat.holding,  # whether this agent fires the network's timed sockets
            "database": "away" if agent.database.away else "ok",  # away: its workers serve on, it tries again
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        return
