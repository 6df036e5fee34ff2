"""``pyfi proc``: ask the agents to start, stop, pause... a processor."""
from __future__ import annotations

import click

from pyfi.cli.context import AppContext, pass_app
from pyfi.errors import InvalidInput


@click.group()
@click.option("--id", "ident", help="ID of processor")
@click.option("-n", "--name", help="Name of processor")
@click.pass_context
def proc(ctx: click.Context, ident: str | None, name: str | None) -> None:
    """Run or manage processors"""
    ctx.meta["proc_selector"] = (name, ident)


def _make(action: str, doc: str) -> click.Command:
    @click.command(action, help=doc)
    @click.option("-n", "--name", "sub_name", help="Name of processor (or give it to `proc`)")
    @click.pass_context
    @pass_app
    def command(app: AppContext, ctx: click.Context, sub_name: str | None) -> None:
        from pyfi.core import processors
        from pyfi.core.network import namespace
        from pyfi.messaging.doorbell import ring

        name, ident = selector(*ctx.meta.get("proc_selector", (None, None)), sub_name, action)
        with app.session() as session:
            processor = processors.request(session, app.actor, action, name, ident)
            channels = namespace(session)
            click.echo(f"Processor {processor.name!r}: requested {processor.requested_status}")
        ring(app.settings.pubsub, processor.name, channels)  # committed: the agents act now, not at their next tick

    return command


def selector(name: str | None, ident: str | None, sub_name: str | None, action: str) -> tuple[str | None, str | None]:
    """One processor, named once: two different selectors would act on one of them silently."""
    if name and sub_name and name != sub_name:
        raise InvalidInput(f"two processors named: {name!r} (proc -n) and {sub_name!r} ({action} -n)",
                           "give -n/--name once")
    name = name or sub_name
    if name and ident:
        raise InvalidInput(f"two processor selectors: -n {name!r} and --id {ident!r}", "give -n/--name or --id, not both")
    return name, ident


for _action, _doc in {
    "start": "Start a processor",
    "stop": "Stop a processor",
    "pause": "Pause a processor (workers stay up but stop consuming)",
    "resume": "Resume a paused processor",
    "restart": "Restart a processor",
    "remove": "Remove a processor from every node",
}.items():
    proc.add_command(_make(_action, _doc))
