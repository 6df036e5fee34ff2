"""``pyfi proc``: ask the agents to start, stop, pause... a processor."""
from __future__ import annotations

import click

from pyfi.cli.context import AppContext, pass_app


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
        from pyfi.agent.doorbell import ring
        from pyfi.core import processors

        name, ident = ctx.meta.get("proc_selector", (None, None))
        with app.session() as session:
            processor = processors.request(session, app.actor, action, sub_name or name, ident)
            click.echo(f"Processor {processor.name!r}: requested {processor.requested_status}")
        ring(app.settings.pubsub, processor.name)  # committed: the agents act now, not at their next tick

    return command


for _action, _doc in {
    "start": "Start a processor",
    "stop": "Stop a processor",
    "pause": "Pause a processor (workers stay up but stop consuming)",
    "resume": "Resume a paused processor",
    "restart": "Restart a processor",
    "remove": "Remove a processor from every node",
}.items():
    proc.add_command(_make(_action, _doc))
