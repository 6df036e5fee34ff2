"""``pyfi ls``: list objects (plural, paged) or show one with its relations (singular)."""
from __future__ import annotations

from typing import Any, Callable

import click

from pyfi.cli import ls_calls, render
from pyfi.cli.context import AppContext, pass_app
from pyfi.masking import printable

LISTED = ["queue", "processor", "socket", "plug", "node", "agent", "worker", "scheduler",
          "deployment", "network", "user", "role"]


@click.group()
def ls() -> None:
    """List database objects and their relations"""


def paging(func: Callable) -> Callable:
    func = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table")(func)
    func = click.option("-a", "--ascend", is_flag=True, help="Oldest first")(func)
    func = click.option("-r", "--rows", type=int, default=10, show_default=True, help="Rows per page")(func)
    return click.option("-p", "--page", type=int, default=1, show_default=True, help="Page number")(func)


def echo_page(kind_name: str, page: Any, as_json: bool) -> None:
    if as_json:
        payload = {"page": page.number, "pages": page.pages, "total": page.total, "exact": page.exact,
                   "next": page.next, "rows": [render.record(kind_name, row) for row in page.rows]}
        click.echo(render.dumps(payload))
    else:
        click.echo(render.paged_table(kind_name, page))


def _make_plural(kind_name: str) -> click.Command:
    @click.command(f"{kind_name}s", help=f"List {kind_name}s")
    @paging
    @pass_app
    def command(app: AppContext, page: int, rows: int, ascend: bool, as_json: bool) -> None:
        from pyfi.core import objects
        from pyfi.core.kinds import kind

        with app.session() as session:
            echo_page(kind_name, objects.listing(session, app.actor, kind(kind_name), page, rows, ascend), as_json)

    return command


def _make_singular(kind_name: str) -> click.Command:
    @click.command(kind_name, help=f"Show one {kind_name} and its relations")
    @click.option("-n", "--name", help=f"Name of the {kind_name}")
    @click.option("--id", "ident", help=f"ID of the {kind_name}")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables")
    @pass_app
    def command(app: AppContext, name: str | None, ident: str | None, as_json: bool) -> None:
        from pyfi.core import objects
        from pyfi.core.kinds import kind

        with app.session() as session:
            obj = objects.get(session, app.actor, kind(kind_name), name, ident)
            echo_object(kind_name, obj, relations(kind_name, obj), as_json)

    return command


def relations(kind_name: str, obj: Any) -> list[tuple[str, str, list[Any]]]:
    """(title, kind, rows) tables shown under one object."""
    if kind_name == "queue":
        return [("Sockets", "socket", obj.sockets), ("Plugs", "plug", obj.plugs)]
    if kind_name == "processor":
        return [("Sockets", "socket", obj.sockets), ("Running workers", "worker", obj.workers_running)]
    if kind_name == "socket":
        return [("Plugs out", "plug", obj.plugs_out), ("Plugs in", "plug", obj.plugs_in)]
    if kind_name == "node":
        return [("Agents", "agent", obj.agents)]
    if kind_name == "scheduler":
        return [("Nodes", "node", obj.nodes), ("Deployments", "deployment", _deployments_of(obj))]
    if kind_name == "agent":
        return [("Workers", "worker", obj.workers)]
    if kind_name == "user":
        inherited = [p for r in obj.roles for p in r.privileges]
        return [("Roles", "role", obj.roles), ("Privileges", "privilege", list(obj.privileges) + inherited)]
    if kind_name == "role":
        return [("Users", "user", obj.users), ("Privileges", "privilege", obj.privileges)]
    return []


def _deployments_of(scheduler: Any) -> list[Any]:
    from sqlalchemy import select
    from sqlalchemy.orm import object_session

    from pyfi.db.models import Deployment

    query = select(Deployment).where(Deployment.scheduler_id == scheduler.id).order_by(Deployment.name)
    return list(object_session(scheduler).scalars(query))


def echo_object(kind_name: str, obj: Any, related: list[tuple[str, str, list[Any]]], as_json: bool) -> None:
    if as_json:
        data = render.record(kind_name, obj)
        for title, rel_kind, rows in related:
            data[title.lower().replace(" ", "_")] = [render.record(rel_kind, r) for r in rows]
        click.echo(render.dumps(data))
        return
    click.echo(render.table(kind_name, [obj]))
    error = render.shown_processor(obj)[1] if kind_name == "processor" else None
    if error:  # the table cell shows only its start
        click.echo("Error: " + printable(error, keep="\n\t"))
    for title, rel_kind, rows in related:
        click.echo(title)
        click.echo(render.table(rel_kind, rows))


for _kind_name in LISTED:
    ls.add_command(_make_plural(_kind_name))
    ls.add_command(_make_singular(_kind_name))


@ls.command("tasks")
@paging
@pass_app
def ls_tasks(app: AppContext, page: int, rows: int, ascend: bool, as_json: bool) -> None:
    """List tasks (the functions sockets run)"""
    from sqlalchemy import select

    from pyfi.core.access import require
    from pyfi.core.paging import paged
    from pyfi.db.models import Task
    from pyfi.enums import Right

    with app.session() as session:
        require(session, app.actor, Right.READ)
        echo_page("task", paged(session, select(Task), Task.lastupdated, page, rows, ascend), as_json)


@ls.command("placements")
@click.option("-s", "--scheduler", help="Only this scheduler's moves")
@paging
@pass_app
def ls_placements(app: AppContext, scheduler: str | None, page: int, rows: int, ascend: bool, as_json: bool) -> None:
    """List the moves schedulers made: a processor's worker processes on a node, before and after, and why"""
    from sqlalchemy import select

    from pyfi.core.access import require
    from pyfi.core.paging import paged
    from pyfi.db.models import Placement
    from pyfi.enums import Right

    query = select(Placement) if scheduler is None else select(Placement).where(Placement.scheduler == scheduler)
    with app.session() as session:
        require(session, app.actor, Right.READ)
        echo_page("placement", paged(session, query, Placement.created, page, rows, ascend), as_json)


ls.add_command(ls_calls.ls_calls)
ls.add_command(ls_calls.ls_call)
