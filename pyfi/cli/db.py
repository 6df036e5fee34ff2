"""``pyfi db``: schema lifecycle through the migrations."""
from __future__ import annotations

import json

import click

from pyfi.cli.context import AppContext, pass_app

YES = click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation")


@click.group()
def db() -> None:
    """Database operations"""


@db.command()
@pass_app
def init(app: AppContext) -> None:
    """Initialize database tables"""
    from pyfi.core import schema
    from pyfi.db.engine import redact
    from pyfi.private import secure_home

    secure_home(app.settings.home)
    url = app.db_url
    if schema.init(url, app.settings.user):
        click.echo(f"Database {redact(url)} initialized; {app.settings.user!r} is its administrator (ALL)")
    else:
        click.echo(f"Database {redact(url)} is already initialized (run `pyfi db migrate` to upgrade it)")


@db.command()
@pass_app
def migrate(app: AppContext) -> None:
    """Perform database migration/upgrade"""
    from pyfi.core import schema

    before, after = schema.upgrade(app.db_url, app.actor)
    if before == after:
        click.echo(f"Database is up to date (revision {after})")
    else:
        click.echo(f"Database migrated from revision {before} to {after}")


def drop_tables(app: AppContext, yes: bool, question: str) -> str:
    """Confirm (unless -y), drop every pyfi table, and return the printable URL."""
    from pyfi.core import schema
    from pyfi.db.engine import redact

    shown = redact(app.db_url)
    if not yes:
        click.confirm(f"{question} every pyfi table in {shown}? All data will be lost", abort=True)
    schema.drop(app.db_url, app.actor)
    return shown


@db.command()
@YES
@pass_app
def drop(app: AppContext, yes: bool) -> None:
    """Drop all database tables"""
    click.echo(f"Dropped all tables in {drop_tables(app, yes, 'Drop')}")


@db.command()
@YES
@pass_app
def rebuild(app: AppContext, yes: bool) -> None:
    """Drop and rebuild database tables"""
    from pyfi.core import schema

    shown = drop_tables(app, yes, "Drop and rebuild")
    schema.init(app.db_url, app.settings.user)
    click.echo(f"Rebuilt database {shown}")


@db.command("json")
@pass_app
def dump_json(app: AppContext) -> None:
    """Dump the database to JSON"""
    from pyfi.core import schema

    click.echo(json.dumps(schema.dump(app.db_url, app.actor), indent=2))
