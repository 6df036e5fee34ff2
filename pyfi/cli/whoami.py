"""``pyfi whoami``: who the database and pyfi think you are."""
from __future__ import annotations

import click

from pyfi.cli.context import AppContext, pass_app


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON")
@pass_app
def whoami(app: AppContext, as_json: bool) -> None:
    """Database login user"""
    from sqlalchemy import text

    from pyfi.cli.render import dumps
    from pyfi.core.access import rights_of

    with app.session() as session:
        login = app.settings.user
        if session.bind.dialect.name == "postgresql":
            login = session.execute(text("SELECT current_user")).scalar_one()
        rights = sorted(r.value for r in rights_of(session, app.settings.user))
    if as_json:
        click.echo(dumps({"database_user": login, "pyfi_user": app.settings.user, "rights": rights}))
        return
    click.echo(f"Database user: {login}")
    click.echo(f"Pyfi user: {app.settings.user}")
    click.echo(f"Rights: {', '.join(rights) if rights else '(none)'}")
