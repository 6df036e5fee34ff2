"""``pyfi compose``: build a whole network (queues, processors, sockets, plugs) from one file."""
from __future__ import annotations

import click

from pyfi.cli.context import AppContext, pass_app


@click.group()
def compose() -> None:
    """Build a network from a YAML or JSON file (see docs/compose.rst)"""


@compose.command("build")
@click.option("-f", "--file", "path", required=True, type=click.Path(dir_okay=False),
              help="Network file (YAML or JSON)")
@click.option("--dry-run", is_flag=True, help="Print the plan (create/update/unchanged) and change nothing")
@pass_app
def build(app: AppContext, path: str, dry_run: bool) -> None:
    """Create or update every object of the file, in one transaction"""
    from pyfi.core import compose as core_compose
    from pyfi.core.netfile import load

    network = load(path)  # a bad file is rejected before the database is opened
    with app.session() as session:
        plan = core_compose.build(session, app.actor, network)
        if dry_run:
            session.rollback()  # the plan was computed by the real build; undo it
    for change in plan.changes:
        click.echo(change.describe())
    click.echo(plan.summary(dry_run))
