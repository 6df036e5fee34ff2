"""``pyfi whoami``: who the database and pyfi think you are."""
from __future__ import annotations

import click

from pyfi.cli.context import AppContext, pass_app


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON")
@pass_app
def whoami(app: AppContext, as_json: bool) -> None:
    """Database login user"""
    from pyfi.cli.render import dumps
    from pyfi.core.access import rights_of
    from pyfi.core.login import database_user

    with app.session() as session:
        login = database_user(session, app.settings.user)
        user = app.actor.name
        rights = sorted(r.value for r in rights_of(session, user))
    if as_json:
        click.echo(dumps({"database_user": login, "pyfi_user": user, "rights": rights}))
        return
    click.echo(f"Database user: {login}")
    click.echo(f"Pyfi user: {user}")
    click.echo(f"Rights: {', '.join(rights) if rights else '(none)'}")
