"""``pyfi update``: change objects, selected by ``-n/--name`` or ``--id``."""
from __future__ import annotations

import click

from pyfi.cli.context import AppContext, pass_app, warn
from pyfi.cli.options import SPECS


@click.group()
def update() -> None:
    """Update a database object"""


def _make_update(kind_name: str) -> click.Command:
    def command(app: AppContext, name: str | None, ident: str | None, rename: str | None, **changes: object) -> None:
        from pyfi.core import objects
        from pyfi.core.kinds import kind

        changes["name"] = rename
        with app.session() as session:
            obj = objects.update(session, app.actor, kind(kind_name), name, ident, changes)
            click.echo(f"Updated {kind_name} {obj.name!r}")
            warn(kind(kind_name).notes(session, obj))

    command.__doc__ = f"Update a {kind_name}, selected by -n/--name or --id"
    command = pass_app(command)
    for opt in reversed(SPECS[kind_name]):
        if opt.field != "name":
            command = opt.for_update()(command)
    command = click.option("--rename", help="New name")(command)
    command = click.option("--id", "ident", help=f"ID of the {kind_name}")(command)
    command = click.option("-n", "--name", help=f"Name of the {kind_name}")(command)
    return click.command(kind_name)(command)


for _kind_name in SPECS:
    update.add_command(_make_update(_kind_name))


@update.command("user")
@click.option("-n", "--name", help="Name of the user")
@click.option("--id", "ident", help="ID of the user")
@click.option("-e", "--email")
@click.option("-p", "--password", is_flag=False, flag_value="", default=None,
              help="New password; give -p alone to be prompted (hidden, twice)")
@click.option("--revoke-tokens", is_flag=True,
              help="Revoke every token of the user (pyfi login, POST /api/token): their own need no right")
@pass_app
def update_user(app: AppContext, name: str | None, ident: str | None, email: str | None, password: str | None,
                revoke_tokens: bool) -> None:
    """Update a user's email or password, or revoke their tokens"""
    from pyfi.core import tokens, users

    if password == "":
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with app.session() as session:
        if revoke_tokens:
            count = tokens.revoke_all(session, app.actor, name, ident)
            click.echo(f"Revoked {count} token(s) of user {name or ident!r}")
            if email is None and password is None:
                return
        user = users.update_user(session, app.actor, name, ident, email=email, password=password)
        click.echo(f'User "{user.name}" updated')
