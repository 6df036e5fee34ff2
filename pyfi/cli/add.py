"""``pyfi add``: create objects."""
from __future__ import annotations

import click

from pyfi.cli.context import AppContext, pass_app, warn
from pyfi.cli.options import HELP, SPECS


@click.group()
def add() -> None:
    """Add an object to the database"""


def _make_add(kind_name: str) -> click.Command:
    def command(app: AppContext, **fields: object) -> None:
        from pyfi.core import objects
        from pyfi.core.kinds import kind

        with app.session() as session:
            obj = objects.add(session, app.actor, kind(kind_name), fields)
            click.echo(f"{obj.id}:{obj.name}:{obj.created}")
            warn(kind(kind_name).notes(session, obj))

    command.__doc__ = HELP[kind_name]
    command = pass_app(command)
    for opt in reversed(SPECS[kind_name]):
        command = opt.for_add()(command)
    return click.command(kind_name)(command)


for _kind_name in SPECS:
    add.add_command(_make_add(_kind_name))


@add.command("user")
@click.option("-n", "--name", prompt="Name", required=True)
@click.option("-e", "--email", prompt="Email", required=True)
@click.option("-p", "--password", prompt="Password", hide_input=True, confirmation_prompt=True, required=True,
              help="Prompted (hidden, twice) when omitted; prefer the prompt to keep it out of shell history")
@click.option("--adopt", is_flag=True,
              help="PostgreSQL: make an existing database role of that name (a pyfi user of another database on the "
                   "server) this database's user too; its password becomes the one given, for every database")
@pass_app
def add_user(app: AppContext, name: str, email: str, password: str, adopt: bool) -> None:
    """Add user object to the database"""
    from pyfi.core import users

    with app.session() as session:
        users.add_user(session, app.actor, name, email, password, echo=click.echo, adopt=adopt)
    click.echo(f'User "{name}" added')


@add.command("role")
@click.option("-n", "--name", required=True)
@click.option("-u", "--user", help="Give the (existing) role to this user instead of creating it")
@pass_app
def add_role(app: AppContext, name: str, user: str | None) -> None:
    """Add role object to the database, or give a role to a user (-u)"""
    from pyfi.core import users

    with app.session() as session:
        if user:
            users.grant_role(session, app.actor, name, user)
            click.echo(f'Role "{name}" given to "{user}"')
            return
        role = users.add_role(session, app.actor, name)
        click.echo(f"{role.id}:{role.name}:{role.created}")


@add.command("privilege")
@click.option("-u", "--user", help="User to grant the right to")
@click.option("-n", "--name", required=True, help="The right, e.g. ADD_PROCESSOR")
@click.option("-r", "--role", help="Role to grant the right to")
@pass_app
def add_privilege(app: AppContext, user: str | None, name: str, role: str | None) -> None:
    """Add privilege to the database"""
    from pyfi.core import users

    with app.session() as session:
        privilege, new = users.add_privilege(session, app.actor, name, user=user, role=role)
        right = privilege.right.value
    grantee = f'user "{user}"' if user else f'role "{role}"'
    click.echo("Privilege added" if new else f"{grantee} already has the right {right}")
