"""``pyfi login`` and ``pyfi logout``: act as a pyfi user proven by their password, by a token kept in the ini file.

``login`` asks for the password (never echoed, never stored), has core issue
a token (``pyfi.core.tokens``) and keeps ``[login] user`` and ``[login]
token`` in the user's ini file, mode 0600; every later command acts as that
token's user, checked when its session opens. ``logout`` revokes the token
and takes it out of the ini file.
"""
from __future__ import annotations

import click

from pyfi.cli.context import AppContext, pass_app


@click.command()
@click.option("-u", "--user", help="pyfi user to log in as (default: the configured login user)")
@click.option("--hours", type=click.FloatRange(min=0, min_open=True), default=12.0, show_default=True,
              help="Hours the login stays valid")
@pass_app
def login(app: AppContext, user: str | None, hours: float) -> None:
    """Log in as a pyfi user: later commands act as that user"""
    from pyfi.core import tokens

    name = user or app.settings.user
    password = click.prompt(f"Password for {name}", hide_input=True)
    earlier = tokens.configured_token(app.settings)
    app.use_token = False  # the login is checked by the password, not by a token stored before
    with app.session() as session:
        issued = tokens.token_for(session, name, password, hours)
        if earlier:
            tokens.revoke(session, earlier)
    tokens.store_login(app.settings.ini, issued.user, issued.token)
    click.echo(f"Logged in as {issued.user} until {issued.expires:%Y-%m-%d %H:%M} UTC (token kept in {app.settings.ini})")


@click.command()
@pass_app
def logout(app: AppContext) -> None:
    """Log out: revoke the token pyfi login stored and remove it from the ini file"""
    from pyfi.core import tokens

    token = tokens.configured_token(app.settings)
    if not token:
        click.echo("Not logged in")
        return
    app.use_token = False
    with app.session() as session:
        tokens.revoke(session, token)
    if not tokens.forget_login(app.settings.ini):
        click.echo(f"Token revoked; it comes from {tokens.TOKEN_ENV}: unset it")
        return
    click.echo(f"Logged out (token revoked and removed from {app.settings.ini})")
