"""``pyfi scheduler`` and ``pyfi node``: placing processors across nodes (see docs/scheduling.rst)."""
from __future__ import annotations

import signal

import click

from pyfi.cli.context import AppContext, pass_app
from pyfi.errors import InvalidInput


@click.group()
@click.option("-n", "--name", help="Name of the scheduler (or give it to the sub-command)")
@click.pass_context
def scheduler(ctx: click.Context, name: str | None) -> None:
    """Scheduler management commands: its nodes, and the process that places processors on them"""
    ctx.meta["scheduler"] = name


def one_name(group_name: str | None, sub_name: str | None, what: str) -> str:
    """The name given once (to the group or to the sub-command)."""
    if group_name and sub_name and group_name != sub_name:
        raise InvalidInput(f"two {what}s named: {group_name!r} and {sub_name!r}", "give -n/--name once")
    if not (group_name or sub_name):
        raise InvalidInput(f"which {what}?", "give -n/--name NAME")
    return group_name or sub_name


def ring_schedulers(app: AppContext, channels: str) -> None:
    """Placement depends on what was just committed: the scheduler places now, not at its next round."""
    from pyfi.messaging.doorbell import SCHEDULERS, ring

    ring(app.settings.pubsub, "placement", channels, SCHEDULERS)


def _membership(action: str) -> click.Command:
    @click.command(action, help=f"{'Add a node to' if action == 'add' else 'Remove a node from'} the scheduler's nodes")
    @click.option("--node", required=True, help="Name of the node (nodes register when their agent starts)")
    @click.option("-n", "--name", "sub_name", help="Name of the scheduler (or give it to `scheduler`)")
    @click.pass_context
    @pass_app
    def command(app: AppContext, ctx: click.Context, node: str, sub_name: str | None) -> None:
        from pyfi.core import scheduling
        from pyfi.core.network import namespace

        name = one_name(ctx.meta.get("scheduler"), sub_name, "scheduler")
        change = scheduling.add_node if action == "add" else scheduling.remove_node
        with app.session() as session:
            found = change(session, app.actor, name, node)
            nodes, channels = ", ".join(sorted(n.name for n in found.nodes)) or "none", namespace(session)
        click.echo(f"Scheduler {name!r} places on: {nodes}")
        ring_schedulers(app, channels)

    return command


scheduler.add_command(_membership("add"))
scheduler.add_command(_membership("remove"))


@scheduler.command("start")
@click.option("-n", "--name", "sub_name", help="Name of the scheduler (or give it to `scheduler`)")
@click.pass_context
@pass_app
def scheduler_start(app: AppContext, ctx: click.Context, sub_name: str | None) -> None:
    """Run a scheduler's placement in the foreground (several may run: one places at a time); Ctrl-C stops it"""
    from pyfi.core.access import require
    from pyfi.core.login import check_owner_login
    from pyfi.enums import Right
    from pyfi.scheduler.process import SchedulerProcess

    name = one_name(ctx.meta.get("scheduler"), sub_name, "scheduler")
    with app.session() as session:
        require(session, app.actor, Right.UPDATE_SCHEDULER)
        check_owner_login(session, "a scheduler")
    process = SchedulerProcess(app.settings, name, say=click.echo)
    stop = lambda *_: process.stop_event.set()  # noqa: E731 - signal handler
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    click.echo(f"Scheduler {name} started; Ctrl-C or SIGTERM stops it")
    process.run()
    click.echo(f"Scheduler {name} stopped")


@click.group()
def node() -> None:
    """Node management operations: cordon, uncordon, drain (nodes register themselves; see `pyfi ls nodes`)"""


def _node_state(command: str, doc: str) -> click.Command:
    @click.command(command, help=doc)
    @click.option("-n", "--name", required=True, help="Name of the node")
    @pass_app
    def run(app: AppContext, name: str) -> None:
        from pyfi.core import scheduling
        from pyfi.core.network import namespace

        with app.session() as session:
            found = scheduling.set_node_state(session, app.actor, name, command)
            state = "draining" if found.draining else "cordoned" if found.cordoned else "schedulable"
            channels = namespace(session)
        ring_schedulers(app, channels)
        click.echo(f"Node {name!r}: {state}")

    return run


for _command, _doc in {
    "cordon": "Place nothing new on the node (what runs there stays)",
    "uncordon": "Let schedulers place on the node again",
    "drain": "Move everything placed on the node away (running calls finish first) and place nothing new there",
}.items():
    node.add_command(_node_state(_command, _doc))
