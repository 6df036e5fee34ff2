"""The ``pyfi`` command: a thin front end over ``pyfi.core``.

Subcommands are imported only when invoked (``LazyGroup``), so ``pyfi --help``
stays fast and never imports Celery or SQLAlchemy. Errors from core are
translated once, here, into one line and an exit code; a reader that closed
stdout early (``pyfi ls calls | head``) ends every command quietly.
"""
from __future__ import annotations

import os
import sys
from typing import Any, NoReturn

import click

from pyfi.cli.lazy import LazyGroup

COMMANDS = {
    "add": ("pyfi.cli.add:add", "Add an object to the database"),
    "compose": ("pyfi.cli.compose:compose", "Build a network from a YAML or JSON file"),
    "agent": ("pyfi.cli.runtime:agent", "Run pyfi agent"),
    "api": ("pyfi.cli.api:api", "API server admin"),
    "db": ("pyfi.cli.db:db", "Database operations"),
    "delete": ("pyfi.cli.delete:delete", "Delete an object from the database"),
    "listen": ("pyfi.cli.listen:listen", "Listen to a processor output"),
    "login": ("pyfi.cli.login:login", "Log in as a pyfi user"),
    "logout": ("pyfi.cli.login:logout", "Log out: revoke the stored token"),
    "ls": ("pyfi.cli.ls:ls", "List database objects and their relations"),
    "node": ("pyfi.cli.scheduling:node", "Node management operations"),
    "proc": ("pyfi.cli.proc:proc", "Run or manage processors"),
    "scheduler": ("pyfi.cli.scheduling:scheduler", "Scheduler management commands"),
    "task": ("pyfi.cli.runtime:task", "Pyfi task management"),
    "update": ("pyfi.cli.update:update", "Update a database object"),
    "web": ("pyfi.cli.web:web", "Web server admin"),
    "whoami": ("pyfi.cli.whoami:whoami", "Database login user"),
    "worker": ("pyfi.cli.runtime:worker", "Run pyfi worker"),
}


#: the exit status of a process killed by SIGPIPE, what a shell shows for `yes | head`
CLOSED_PIPE_EXIT = 128 + 13


class RootGroup(LazyGroup):
    """The ``pyfi`` group: LazyGroup, plus a quiet end when stdout's reader has gone."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            result = super().invoke(ctx)
            sys.stdout.flush()  # output still buffered would otherwise fail at interpreter exit, with a message
            return result
        except BrokenPipeError:
            closed_stdout()


def closed_stdout() -> NoReturn:
    """Exit as a SIGPIPE would, silently: stdout now points at /dev/null so the final flush cannot fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no file descriptor (a test runner's buffer): there is nothing to flush at exit
        pass
    raise click.exceptions.Exit(CLOSED_PIPE_EXIT)


@click.group(cls=RootGroup, commands=COMMANDS, translate_errors=True, invoke_without_command=True)
@click.option("--debug", is_flag=True, help="Debug switch: show tracebacks and SQL errors in full")
@click.option("-d", "--db", help="Database URI")
@click.option("--backend", help="Task queue backend")
@click.option("--broker", help="Message broker URI")
@click.option("-i", "--ini", help="PYFI .ini configuration file")
@click.option("-c", "--config", is_flag=True, help="Configure pyfi")
@click.pass_context
def cli(ctx: click.Context, debug: bool, db: str, backend: str, broker: str, ini: str, config: bool) -> None:
    """Pyfi CLI for managing the pyfi network"""
    from pyfi.cli.context import AppContext
    from pyfi.private import private_umask

    private_umask()  # everything pyfi creates (databases, logs, checkouts) is its user's alone

    ctx.obj = AppContext({"debug": debug, "db": db, "backend": backend, "broker": broker, "ini": ini,
                          "config": config})
    if config:
        from pyfi.cli.configure import configure

        configure(ctx.obj)
    elif ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


def main() -> None:
    """Console-script entry point."""
    cli.main(prog_name="pyfi", auto_envvar_prefix=None)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
