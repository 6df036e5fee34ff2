"""``pyfi ls calls`` and ``pyfi ls call``: calls, their events and provenance."""
from __future__ import annotations

from typing import Any

import click

from pyfi.cli import render
from pyfi.cli.context import AppContext, pass_app
from pyfi.enums import CallState
from pyfi.masking import printable

STATES = [state.value for state in CallState]


@click.command("calls")
@click.option("-p", "--page", type=int, default=1, show_default=True, help="Page number")
@click.option("-r", "--rows", type=int, default=10, show_default=True, help="Rows per page")
@click.option("-a", "--ascend", is_flag=True, help="Oldest first")
@click.option("-s", "--socket", help="Only calls of this socket (by name)")
@click.option("--state", type=click.Choice(STATES, case_sensitive=False), help="Only calls in this state")
@click.option("--since", help="Only calls updated since: 30s, 10m, 2h, 3d, 1w ago, or an ISO time (UTC)")
@click.option("--tracking", help="Only calls of this flow (tracking id)")
@click.option("--after", help="The rows after this call, in the listing's order (a page's next: fast at any depth)")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table")
@pass_app
def ls_calls(app: AppContext, page: int, rows: int, ascend: bool, socket: str | None, state: str | None,
             since: str | None, tracking: str | None, after: str | None, as_json: bool) -> None:
    """List calls, newest first, a page at a time

    Above 100,000 calls on PostgreSQL the total is the database's estimate
    (about N). JSON output names the call to continue after (next).
    """
    from pyfi.cli.ls import echo_page
    from pyfi.core import calls

    where = calls.CallFilter(socket=socket, state=state, since=since, tracking=tracking)
    with app.session() as session:
        echo_page("call", calls.list_calls(session, app.actor, page, rows, ascend, where, after), as_json)


@click.command("call")
@click.option("--id", "ident", help="ID of call, or the start of it (at least 4 characters, as git takes)")
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
    from pyfi.core import calls, provenance

    with app.session() as session:
        call = calls.get_call(session, app.actor, ident=ident, name=name)
        if tree:
            echo_trees([provenance.forward_tree(session, app.actor, call)], as_json)
        elif graph:
            echo_trees(provenance.flow_graph(session, app.actor, call), as_json)
        elif flow:
            echo_flow(provenance.flow_calls(session, app.actor, call), as_json)
        else:
            stored = read_result(app, call.id) if result else None
            echo_call(call, calls.provenance_of(session, call), stored, as_json)


def read_result(app: AppContext, call_id: str) -> Any:
    from pyfi.core.results import read_result as read

    return read(app.settings, call_id)


def echo_call(call: Any, origin: Any, stored: Any, as_json: bool) -> None:
    if as_json:
        data = render.record("call", call)
        data.update(parents=origin.parents, plug=origin.plug)
        data["events"] = [render.record("event", e) for e in call.events]
        if stored is not None:
            data["result"] = stored.as_dict()
        click.echo(render.dumps(data))
        return
    click.echo(render.table("call", [call]))
    click.echo("Provenance")
    click.echo(render.table("provenance", [origin]))
    click.echo("Events")
    click.echo(render.table("event", call.events))
    if stored is not None:
        click.echo(f"Result ({stored.state})")
        click.echo(render.dumps(stored.value))


def echo_flow(rows: list[Any], as_json: bool) -> None:
    if as_json:
        click.echo(render.dumps([render.record("call", c) for c in rows]))
    else:
        click.echo(render.table("call", rows))


def echo_trees(roots: list[Any], as_json: bool) -> None:
    if as_json:
        click.echo(render.dumps([tree_json(r) for r in roots]))
        return
    click.echo("\n".join(draw_tree(root) for root in roots))


def tree_json(root: Any) -> dict[str, Any]:
    """``{"call", "label", "children": [...]}``, built without recursion."""
    out: dict[str, Any] = {"call": root.call_id, "label": root.label, "children": []}
    stack = [(root, out)]
    while stack:
        node, data = stack.pop()
        for child in node.children:
            child_data = {"call": child.call_id, "label": child.label, "children": []}
            data["children"].append(child_data)
            stack.append((child, child_data))
    return out


def draw_tree(root: Any) -> str:
    """Draw a provenance tree in asciitree's box style, as the original pyfi documentation does.

    Laid out exactly like ``asciitree.LeftAligned``, but iteratively: LeftAligned
    recurses once per level and re-prefixes every line below at every level,
    which is quadratic (and overflows the stack) on a deep flow.
    """
    from asciitree.drawing import BOX_LIGHT, BoxStyle

    style = BoxStyle(gfx=BOX_LIGHT, horiz_len=2)
    head = {False: style.child_head(""), True: style.last_child_head("")}
    tail = {False: style.child_tail(""), True: style.last_child_tail("")}
    lines = [style.node_label(printable(root.label))]
    stack = _children_of(root, "")
    while stack:  # pre-order: (node, prefix of its ancestors' lines, is it the last child?)
        node, prefix, last = stack.pop()
        lines.append(prefix + head[last] + style.node_label(printable(node.label)))
        stack.extend(_children_of(node, prefix + tail[last]))
    return "\n".join(lines)


def _children_of(node: Any, prefix: str) -> list[tuple[Any, str, bool]]:
    """Children in reverse, ready for a stack; the last child is marked."""
    count = len(node.children)
    return [(node.children[i], prefix, i == count - 1) for i in range(count - 1, -1, -1)]
