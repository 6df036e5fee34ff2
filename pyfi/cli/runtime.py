"""Runtime command groups: agent, worker, task, node, scheduler, api, web.

Their options follow the seed. The long-running parts arrive with the
runtime work (agents, workers, task run); until then each says so plainly
and exits 1 instead of pretending to run.
"""
from __future__ import annotations

import click

from pyfi.errors import PyfiError


class NotYetAvailable(PyfiError):
    """A command whose implementation has not landed yet."""


def _pending(what: str) -> None:
    raise NotYetAvailable(f"{what} is not available in this version yet", "see docs/roadmap.rst")


@click.group()
def agent() -> None:
    """Run pyfi agent"""


@agent.command("start")
@click.option("-p", "--port", type=int, help="Listen port (health endpoint)")
@click.option("--clean", is_flag=True, help="Remove work directories before launch")
@click.option("-b", "--backend", help="Message backend URI")
@click.option("-r", "--broker", help="Message broker URI")
@click.option("-c", "--config", help="Config module.object import (e.g. path.to.module.MyConfigClass)")
@click.option("-q", "--queues", is_flag=True, help="Run the queue monitor only")
@click.option("-u", "--user", help="Run the worker as user")
@click.option("-po", "--pool", type=int, help="Process pool for message dispatches (the seed's second -p)")
@click.option("-s", "--size", type=int, help="Maximum number of messages on worker internal queue")
@click.option("-n", "--name", help="Node name (default: this machine's hostname)")
def agent_start(**_options: object) -> None:
    """Run pyfi agent server"""
    _pending("pyfi agent start")


@click.group()
def worker() -> None:
    """Run pyfi worker"""


@worker.command("start")
@click.option("-n", "--name", required=True, help="Processor to run")
def worker_start(**_options: object) -> None:
    """Run a worker for one processor"""
    _pending("pyfi worker start")


@click.group()
def task() -> None:
    """Pyfi task management"""


@task.command("run")
@click.option("-s", "--socket", required=True, help="Socket to call")
@click.option("-d", "--data", help="Argument (JSON or a plain string); read from stdin when absent")
def task_run(**_options: object) -> None:
    """Send one call to a socket and print its result"""
    _pending("pyfi task run")


@click.group()
def node() -> None:
    """Node management operations (see also `pyfi ls nodes`)"""


@click.group()
def scheduler() -> None:
    """Scheduler management commands (see also `pyfi add scheduler`)"""


@click.group()
def api() -> None:
    """API server admin"""


@click.group()
def web() -> None:
    """Web server admin"""
