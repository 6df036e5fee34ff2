"""``pyfi delete``: remove objects, selected by ``-n/--name`` or ``--id``."""
from __future__ import annotations

import click

from pyfi.cli.context import AppContext, pass_app
from pyfi.cli.options import SPECS


@click.group()
def delete() -> None:
    """Delete an object from the database"""


def _make_delete(kind_name: str) -> click.Command:
    @click.command(kind_name, help=f"Delete a {kind_name}, selected by -n/--name or --id")
    @click.option("-n", "--name", help=f"Name of the {kind_name}")
    @click.option("--id", "ident", help=f"ID of the {kind_name}")
    @pass_app
    def command(app: AppContext, name: str | None, ident: str | None) -> None:
        from pyfi.core import objects
        from pyfi.core.kinds import kind

        with app.session() as session:
            obj = objects.delete(session, app.actor, kind(kind_name), name, ident)
            click.echo(f"Deleted {kind_name} {obj.name!r}")

    return command


for _kind_name in SPECS:
    delete.add_command(_make_delete(_kind_name))


@delete.command("user")
@click.option("-n", "--name", help="Name of the user")
@click.option("--id", "ident", help="ID of the user")
@pass_app
def delete_user(app: AppContext, name: str | None, ident: str | None) -> None:
    """Delete a user (and their privileges; on PostgreSQL their login role)"""
    from pyfi.core import users

    with app.session() as session:
        user = users.delete_user(session, app.actor, name, ident, echo=click.echo)
    click.echo(f'User "{user.name}" deleted')


@delete.command("role")
@click.option("-n", "--name", help="Name of the role")
@click.option("--id", "ident", help="ID of the role")
@click.option("-u", "--user", help="Take the role away from this user instead of deleting it")
@pass_app
def delete_role(app: AppContext, name: str | None, ident: str | None, user: str | None) -> None:
    """Delete a role, or take it away from a user (-u)"""
    from pyfi.core import users

    with app.session() as session:
        if user:
            users.revoke_role(session, app.actor, name, user)
            click.echo(f'Role "{name}" taken from "{user}"')
            return
        role = users.delete_role(session, app.actor, name, ident)
        click.echo(f'Role "{role.name}" deleted')


@delete.command("privilege")
@click.option("-u", "--user", help="User holding the right")
@click.option("-n", "--name", required=True, help="The right, e.g. ADD_PROCESSOR")
@click.option("-r", "--role", help="Role holding the right")
@pass_app
def delete_privilege(app: AppContext, user: str | None, name: str, role: str | None) -> None:
    """Revoke a privilege (takes effect at once)"""
    from pyfi.core import users

    with app.session() as session:
        users.delete_privilege(session, app.actor, name, user=user, role=role)
    click.echo("Privilege revoked")
