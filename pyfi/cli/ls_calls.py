"""``pyfi ls calls`` and ``pyfi ls call``: calls, their events and provenance."""
from __future__ import annotations

from typing import Any

import click

from pyfi.cli import render
from pyfi.cli.context import AppContext, pass_app


@click.command("calls")
@click.option("-p", "--page", type=int, default=1, show_default=True, help="Page number")
@click.option("-r", "--rows", type=int, default=10, show_default=True, help="Rows per page")
@click.option("-a", "--ascend", is_flag=True, help="Oldest first")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table")
@pass_app
def ls_calls(app: AppContext, page: int, rows: int, ascend: bool, as_json: bool) -> None:
    """List calls, newest first, a page at a time"""
    from pyfi.cli.ls import echo_page
    from pyfi.core import calls

    with app.session() as session:
        echo_page("call", calls.list_calls(session, app.actor, page, rows, ascend), as_json)


@click.command("call")
@click.option("--id", "ident", help="ID of call")
@click.option("-n", "--name", help="Name of call (the most recent one of that name)")
@click.option("-r", "--result", is_flag=True, help="Include result of call")
@click.option("-t", "--tree", is_flag=True, help="Show forward call tree")
@click.option("-g", "--graph", is_flag=True, help="Show complete call graph")
@click.option("-f", "--flow", is_flag=True, help="Show all calls in a workflow")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables")
@pass_app
def ls_call(app: AppContext, ident: str | None, name: str | None, result: bool, tree: bool, graph: bool,
            flow: bool, as_json: bool) -> None:
    """List details about a call record"""
    from pyfi.core import calls

    with app.session() as session:
        call = calls.get_call(session, app.actor, ident=ident, name=name)
        if tree:
            click.echo(draw_tree(calls.forward_tree(session, app.actor, call)))
            return
        if graph:
            click.echo(draw_tree(calls.flow_graph(session, app.actor, call)))
            return
        if flow:
            echo_flow(calls.flow_calls(session, app.actor, call), as_json)
            return
        echo_call(call, as_json)


def echo_call(call: Any, as_json: bool) -> None:
    if as_json:
        data = render.record("call", call)
        data["events"] = [render.record("event", e) for e in call.events]
        click.echo(render.dumps(data))
        return
    click.echo(render.table("call", [call]))
    click.echo("Provenance")
    click.echo(render.table("provenance", [call]))
    click.echo("Events")
    click.echo(render.table("event", call.events))


def echo_flow(rows: list[Any], as_json: bool) -> None:
    if as_json:
        click.echo(render.dumps([render.record("call", c) for c in rows]))
    else:
        click.echo(render.table("call", rows))


def draw_tree(nested: dict[str, Any]) -> str:
    """Draw ``{label: {child: {...}}}`` with asciitree, as in the seed."""
    from asciitree import LeftAligned
    from asciitree.drawing import BOX_LIGHT, BoxStyle

    return LeftAligned(draw=BoxStyle(gfx=BOX_LIGHT, horiz_len=2))(nested)
