"""Runtime command groups: agent, worker and task.

Options follow the original pyfi documentation. (``scheduler`` and ``node``
are in :mod:`pyfi.cli.scheduling`, ``api`` in :mod:`pyfi.cli.api`, ``web``
in :mod:`pyfi.cli.web`.)
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from pyfi.agent import MAX_SPARES, STALLED_AFTER
from pyfi.cli.context import AppContext, pass_app
from pyfi.cli.options import POSITIVE_SECONDS
from pyfi.errors import InvalidInput
from pyfi.worker import command as worker_command
from pyfi.worker.command import check_node_name

#: 0 is refused: it would serve the health endpoint on a port chosen at random, that nobody could find
PORT = click.IntRange(1, 65535)


@click.group()
def agent() -> None:
    """Run pyfi agent"""


@agent.command("start")
@click.option("-p", "--port", type=PORT, help="Listen port of the health endpoint (JSON), 1-65535")
@click.option("--clean", is_flag=True, help="Remove work directories before launch")
@click.option("-b", "--backend", help="Message backend URI")
@click.option("-r", "--broker", help="Message broker URI")
@click.option("-c", "--config", help="Config module.object import (e.g. path.to.module.MyConfigClass): extra Celery settings")
@click.option("-q", "--queues", is_flag=True, help="Run the queue monitor only (register and heartbeat, start no workers)")
@click.option("-u", "--user",
              help="Run processor code (workers, deploy checks, builds) as this OS user; the agent must be root. "
                   "Needs a --workdir that user can reach, and PostgreSQL with Redis or RabbitMQ")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path),
              help="Where the agent keeps checkouts, environments and workers' run directories "
                   "(default: $PYFI_HOME/agents/<node>)")
@click.option("-po", "--pool", type=click.IntRange(min=1),
              help="Process pool for message dispatches: processes per worker on this node, instead of each "
                   "processor's -w/--workers (the original pyfi CLI had this as a second -p)")
@click.option("-s", "--size", type=click.IntRange(min=1), help="Maximum number of messages on worker internal queue")
@click.option("-n", "--name", callback=check_node_name,
              help="Node name: letters, digits, '.', '_', '-' (default: this machine's hostname)")
@click.option("--spares", type=click.IntRange(min=0), default=MAX_SPARES, show_default=True,
              help="Keep up to this many booted worker processes in reserve, one per processor (stopped ones "
                   "first), so a start or restart takes under a second; each is an idle process of about 70 MB")
@click.option("--no-spares", is_flag=True, help="Keep no spare worker (the same as --spares 0)")
@click.option("--stalled-after", type=POSITIVE_SECONDS, default=STALLED_AFTER, show_default=True,
              help="Seconds a call may wait for a free pool process that does not take it before the agent takes "
                   "its worker for hung, kills it and starts a new one (its calls go back to their queues)")
@click.option("--task-events", is_flag=True,
              help="Workers send Celery task events, so celery events and Flower show each call by its socket's "
                   "name (needs a Redis or RabbitMQ broker) [env PYFI_TASK_EVENTS, ini [celery] task_events]")
@pass_app
def agent_start(app: AppContext, port: int | None, clean: bool, backend: str | None, broker: str | None,
                config: str | None, queues: bool, user: str | None, workdir: Path | None, pool: int | None,
                size: int | None, name: str | None, spares: int, no_spares: bool, stalled_after: float,
                task_events: bool) -> None:
    """Run pyfi agent server"""
    from pyfi.cli.agent_run import start_agent

    settings = app.settings.with_(**{k: v for k, v in {"backend": backend, "broker": broker}.items() if v})
    if task_events:
        settings = settings.with_(task_events=True)
    warn_task_events(settings)
    worker_args = worker_options(pool, size, config)
    check_run_as(user)
    start_agent(settings, name, port, clean, worker_args=worker_args, run_as=user, monitor_only=queues,
                spares=0 if no_spares else spares, workdir=workdir.absolute() if workdir else None,
                stalled_after=stalled_after)


def warn_task_events(settings: Any) -> None:
    """Task events asked for on the embedded default's broker: they would reach no other process."""
    from pyfi.cli.context import warn

    if settings.task_events and settings.broker.startswith("sqla+"):
        warn(["task events reach no other process over the embedded default's SQLite broker: celery events and "
              "Flower see none; use a Redis or RabbitMQ broker (-r/--broker, PYFI_BROKER)"])


def worker_options(pool: int | None, size: int | None, config: str | None) -> tuple[str, ...]:
    """Agent options passed on to every worker it starts."""
    args: list[str] = []
    for flag, value in (("--concurrency", pool), ("--prefetch", size), ("--celery-config", config)):
        if value:
            args += [flag, str(value)]
    return tuple(args)


def check_run_as(user: str | None) -> None:
    import os
    import pwd

    if user is None:
        return
    try:
        pwd.getpwnam(user)
    except KeyError:
        raise InvalidInput(f"no such system user {user!r}", "give an existing login for -u/--user") from None
    if os.geteuid() != 0:
        raise InvalidInput("-u/--user needs the agent to run as root", "start the agent as root or drop -u")



@click.group()
def worker() -> None:
    """Run pyfi worker"""


def _worker_start(**options: Any) -> None:
    from pyfi.worker.command import start_worker

    start_worker(click.get_current_context().find_object(AppContext), **options)


#: the options and help of ``python -m pyfi.worker``, what an agent spawns (pyfi.worker.command): one command
worker_start = click.Command("start", params=list(worker_command.start.params), callback=_worker_start,
                             help=worker_command.start.help)
worker.add_command(worker_start)


@click.group()
def task() -> None:
    """Pyfi task management"""


@task.command("run")
@click.option("-s", "--socket", required=True, help="Socket to call")
@click.option("-d", "--data", help="Argument: JSON, or a plain string (text starting with { or [ must be JSON); "
                                   "read from stdin when absent")
@click.option("--key", help="Routing key for a topic queue (default: the socket's name)")
@click.option("--parent", envvar="PYFI_PARENT", help="Call id to record as this call's parent (shell flows) [env PYFI_PARENT]")
@click.option("--tracking", envvar="PYFI_TRACKING",
              help="Flow id to record (default: the parent's flow, else a new flow) [env PYFI_TRACKING]")
@click.option("--chain", is_flag=True,
              help='Print {"pyfi": "chain", "call", "tracking", "result"}: a downstream `task run` unwraps it '
                   'and records this call as its parent')
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait and print the result, or print the call id")
@click.option("--timeout", type=POSITIVE_SECONDS, default=60.0, show_default=True,
              help="Seconds to wait for the result (more than 0)")
@pass_app
def task_run(app: AppContext, socket: str, data: str | None, key: str | None, parent: str | None,
             tracking: str | None, chain: bool, wait: bool, timeout: float) -> None:
    """Send one call to a socket and print its result"""
    from pyfi.core import chain as chains
    from pyfi.core import tasks
    from pyfi.core.keys import user_signer
    from pyfi.core.results import checked_app

    if chain and not wait:
        raise InvalidInput("--chain prints the result, --no-wait does not wait for it", "drop one of them")
    argument = read_stdin() if data is None else parse_data_option(data)
    link = chains.unwrap(argument)  # an upstream `task run --chain` names the parent and flow
    parent, tracking = parent or link.parent, tracking or link.tracking
    with app.session() as session:
        routes = tasks.plan(session, app.actor, socket, key)
        signer = user_signer(session, app.actor)  # workers run only calls signed by a sender who may run them
        if parent and not tracking:
            tracking = chains.tracking_of(session, parent)
    celery_app = checked_app(app.settings, signer=signer)  # a broker or backend that cannot be used is reported first
    sent = send(app, celery_app, routes, link.data, parent, tracking)
    note_pending(app, sent, tracking, parent)
    for call in sent:
        if not wait:
            click.echo(call.id)
            continue
        value = wait_for(app, celery_app, call, timeout)
        click.echo(chains.envelope(call.id, tracking or call.id, value) if chain else render_result(value))


@task.command("cancel")
@click.option("--id", "ident", help="The call to cancel: its id, or the start of it (at least 4 characters)")
@click.option("--tracking", help="Cancel every call of this flow that has not ended")
@click.option("--terminate", is_flag=True,
              help="Stop a call that is running (its pool process gets SIGTERM); without it a running call "
                   "finishes, but its plugs do not fire")
@pass_app
def task_cancel(app: AppContext, ident: str | None, tracking: str | None, terminate: bool) -> None:
    """Cancel a call that has not ended, or a whole flow: it never runs, or stops

    A queued call is dropped by the worker that meets it, whether its
    agent runs already or starts later; every worker of its socket learns
    of it within a second.
    The call's state becomes cancelled, with who cancelled it (pyfi ls
    calls), and none of its plugs fire. Needs the right CANCEL_TASK.
    """
    from pyfi.core.cancelling import cancel
    from pyfi.errors import PyfiError

    with app.session() as session:
        outcomes = cancel(session, app.actor, ident, tracking, terminate)
    only = outcomes[0] if ident is not None else None
    if only is not None and not only.cancelled and only.state != "cancelled":  # the one call named has ended
        raise PyfiError(only.text, f"see `pyfi ls call --id {only.call_id}`")
    for outcome in outcomes:
        click.echo(outcome.text)


def read_stdin() -> Any:
    """The argument piped in: refuse nothing at all (an upstream command that failed) and bytes that are not text."""
    from pyfi.core import tasks

    binary = getattr(sys.stdin, "buffer", None)  # the bytes, so that text that is not UTF-8 can be named
    raw = binary.read() if binary is not None else sys.stdin.read().encode("utf-8", "surrogateescape")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"stdin is not UTF-8 text (byte {raw[exc.start]:#04x} at offset {exc.start})",
                           "send text or JSON; encode binary data first, e.g. with base64") from None
    if not text.strip():
        raise InvalidInput("no input on stdin and no -d/--data: nothing to send",
                           "give -d/--data VALUE, or -d '\"\"' to send an empty string; "
                           "if piped, check the command before the pipe")
    return tasks.parse_data(text)


def parse_data_option(text: str) -> Any:
    """-d's value: JSON, or a plain string; text that opens like JSON but is not is taken for a typo."""
    import json
    import shlex

    from pyfi.core import tasks

    if text.strip()[:1] in ("{", "["):
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            where = f"column {exc.colno}" if exc.lineno == 1 else f"line {exc.lineno} column {exc.colno}"
            raise InvalidInput(f"-d/--data starts like JSON but is not: {exc.msg} at {where}",
                               f"fix the JSON, or send it as a string: -d {shlex.quote(json.dumps(text))}") from None
    return tasks.parse_data(text)


def send(app: AppContext, celery_app: Any, routes: list[Any], argument: Any, parent: str | None,
         tracking: str | None) -> list[Any]:
    from kombu.exceptions import OperationalError

    from pyfi.core import tasks
    from pyfi.core.results import unavailable

    try:
        return tasks.send(celery_app, routes, [argument], parent=parent, tracking=tracking)
    except (OperationalError, OSError) as exc:  # the broker answered the check, then went away
        raise unavailable(app.settings, "broker", exc) from exc


def note_pending(app: AppContext, sent: list[Any], tracking: str | None, parent: str | None) -> None:
    """Record the sent calls as pending (``ls calls`` shows them queued); a failure costs only the record."""
    from sqlalchemy.exc import SQLAlchemyError

    from pyfi.cli.context import warn
    from pyfi.core.pending import of_sent, record_pending
    from pyfi.errors import PyfiError

    try:
        with app.session() as session:
            record_pending(session, app.actor.name, of_sent(sent, tracking, parent))
    except (PyfiError, SQLAlchemyError) as exc:
        warn([f"the call was sent but not recorded as pending ({str(exc).splitlines()[0]}); "
              "it shows in `pyfi ls calls` once a worker takes it"])


def wait_for(app: AppContext, celery_app: Any, call: Any, timeout: float) -> Any:
    """The call's result; a timeout says what the call's row knows, a backend failure names the backend."""
    from pyfi.core import tasks
    from pyfi.core.calls import explain_timeout
    from pyfi.core.results import unavailable
    from pyfi.errors import CallTimeout, PyfiError

    try:
        return tasks.wait(celery_app, call, timeout)
    except CallTimeout as exc:
        raise explain_timeout(app, exc, [call.id], "raise --timeout") from exc
    except PyfiError:
        raise
    except Exception as exc:  # noqa: BLE001 - anything else comes from the result backend's client
        raise unavailable(app.settings, "backend", exc) from exc


def render_result(value: object) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value)

