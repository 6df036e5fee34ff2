"""The worker's command line: ``python -m pyfi.worker``, what an agent spawns.

It takes the options of ``pyfi worker start`` (``tests/test_layers.py``
holds the two to one set), so the worker process never imports the CLI:
layers point downward, from ``pyfi.cli`` to ``pyfi.worker``. Settings come
from the environment and the ini file, as for every pyfi command; an agent
hands its worker a database login of its own on stdin
(``--credentials-on-stdin``). Errors are one line naming the problem and the
fix, with the exit code the CLI gives them.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from pyfi.core.context import CoreContext
from pyfi.core.names import NODE_NAME, NODE_NAME_RULE
from pyfi.errors import DeployError, PyfiError, first_line, known_error

NO_PATH_HINT = ("this worker was started without --path: give --path CHECKOUT, the directory holding the module, "
                "or fix the processor's -m/--module")


def check_node_name(_ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Click callback: refuse a node name that is not one safe directory name."""
    if value is not None and not NODE_NAME.fullmatch(value):
        raise click.BadParameter(f"{value!r} is not a node name: {NODE_NAME_RULE}", param=param)
    return value


def start_worker(context: CoreContext, name: str, path: str | None, control: str | None, node: str | None,
                 loglevel: str, concurrency: int | None, prefetch: int | None, celery_config: str | None,
                 standby: bool, credentials_on_stdin: bool) -> None:
    """Run one processor's worker until it is told to stop; settings are resolved from *context* when needed."""
    from pyfi.private import undumpable

    undumpable()  # before any credential reaches this process's memory
    if standby:
        from pyfi.worker.standby import preload, wait_for_go

        preload(context.settings)
        if not wait_for_go(Path(control) if control else None):
            return
    from pyfi.worker.main import WorkerOptions, leave, run

    credentials = None
    if credentials_on_stdin:
        from pyfi.worker.credentials import read_credentials

        credentials = read_credentials(sys.stdin)
    options = WorkerOptions(concurrency, prefetch, celery_config)
    try:
        run(context.settings, name, Path(path) if path else None, Path(control) if control else None, node, loglevel,
            options, credentials)
    except DeployError as exc:
        # started by hand without --path, the processor's module is most likely just not on sys.path
        if path is None and isinstance(exc.__cause__, ModuleNotFoundError):
            raise DeployError(exc.message, NO_PATH_HINT) from exc
        raise
    leave(0)


class OneLineError(click.ClickException):
    """A PyfiError as click shows it: ``Error: <message>``, with its exit code."""

    def __init__(self, error: PyfiError) -> None:
        super().__init__(str(error))
        self.exit_code = error.exit_code


class WorkerCommand(click.Command):
    """A click command whose errors are one line, as the CLI's are (``pyfi.cli.lazy``)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except PyfiError as exc:
            raise OneLineError(exc) from exc
        except Exception as exc:  # noqa: BLE001 - last line of defence: one line, exit 1
            known = known_error(exc)
            if known is not None:
                raise OneLineError(known) from exc
            raise click.ClickException(f"unexpected {type(exc).__name__}: {first_line(exc)} "
                                       f"(run it as `pyfi --debug worker start ...` for the traceback)") from exc


@click.command("start", cls=WorkerCommand)
@click.option("-n", "--name", required=True, help="Processor to run")
@click.option("--path", type=click.Path(exists=True, file_okay=False), help="Checkout holding the processor's module")
@click.option("--control", type=click.Path(dir_okay=False), help="Control file an agent writes (pause/run)")
@click.option("--node", callback=check_node_name, help="Node name for the worker's host name")
@click.option("--loglevel", default="WARNING", show_default=True)
@click.option("--concurrency", type=click.IntRange(min=1), help="Processes (default: the processor's -w)")
@click.option("--prefetch", type=click.IntRange(min=1), help="Messages each process may hold")
@click.option("--celery-config", help="module.object with extra Celery settings")
@click.option("--standby", is_flag=True, hidden=True,
              help="Import everything, then start only when a line 'go' arrives on stdin (agents keep one ready)")
@click.option("--credentials-on-stdin", is_flag=True, hidden=True,
              help="Read the worker's database login and signing key from a line on stdin (agents pass them so)")
def start(name: str, path: str | None, control: str | None, node: str | None, loglevel: str,
          concurrency: int | None, prefetch: int | None, celery_config: str | None, standby: bool,
          credentials_on_stdin: bool) -> None:
    """Run a Celery worker for one processor's sockets (agents spawn this; started by hand, it lists itself in ls workers)"""
    start_worker(CoreContext(), name, path, control, node, loglevel, concurrency, prefetch, celery_config, standby,
                 credentials_on_stdin)


def main(argv: list[str] | None = None) -> None:
    """``python -m pyfi.worker``: the same as ``pyfi worker start``."""
    from pyfi.private import private_umask

    private_umask()  # everything the worker creates (logs, unwritten records) is its user's alone
    start.main(args=argv, prog_name="python -m pyfi.worker", auto_envvar_prefix=None)
