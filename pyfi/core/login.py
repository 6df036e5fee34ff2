"""Who the database and pyfi think is acting.

On PostgreSQL a pyfi user logs in as their own database role: when a
password is configured (``PYFI_PASSWORD`` or ``[login] password``), the
database URL is rewritten to log in as the configured user with it, and the
database itself (grants, row-level security) enforces what that role may
do. The acting pyfi user is then the login that authenticated, the
database's ``session_user`` (never ``current_user``, which ``SET ROLE`` or a
connection option ``-c role=...`` changes): a session logged in as a pyfi
role cannot act as anyone else, whatever ``PYFI_USER`` says. A login that is not a pyfi role (the database owner, e.g.
``postgres``) is trusted to name the pyfi user (``PYFI_USER`` / ``[login]
user``), as on SQLite, where pyfi is single-user and enforcement is in core
only.
"""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session

from pyfi.core.pg_roles import GROUP

#: session_user is the role that authenticated; current_user is whatever SET ROLE (or a connection's
#: ``-c role=...`` option) switched to, and names no one
_CURRENT = text(
    "SELECT session_user AS login, EXISTS (SELECT 1 FROM pg_auth_members m"
    " JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles r ON r.oid = m.member"
    " WHERE g.rolname = :group AND r.rolname = session_user) AS managed"
)


def login_url(db_url: str, user: str, password: str | None) -> str:
    """``db_url`` logging in as ``user`` with ``password`` (PostgreSQL with a password only)."""
    if not password:
        return db_url
    try:
        url = make_url(db_url)
    except ArgumentError:
        return db_url  # reported, with the fix, when the engine is created
    if url.get_backend_name() != "postgresql":
        return db_url
    return url.set(username=user, password=password).render_as_string(hide_password=False)


def database_user(session: Session, configured: str) -> str:
    """The database login (``session_user`` on PostgreSQL; the configured user on SQLite)."""
    if session.get_bind().dialect.name != "postgresql":
        return configured
    return session.execute(_CURRENT, {"group": GROUP}).one().login


def check_owner_login(session: Session, who: str) -> None:
    """``who`` (an agent, a scheduler) writes for every user: on PostgreSQL it needs the database owner's login."""
    from pyfi.errors import PermissionDenied

    if session.get_bind().dialect.name != "postgresql":
        return
    if not session.execute(text("SELECT pyfi_is_admin()")).scalar():
        raise PermissionDenied(f"{who} needs the database owner's login: it writes for every user",
                               "give it the URI of the login that ran `pyfi db init` (--db or PYFI_DB)")


def own_login(session: Session) -> str | None:
    """The pyfi user whose own PostgreSQL role the session logged in as (None: the database owner, or SQLite)."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    row = session.execute(_CURRENT, {"group": GROUP}).one()
    return row.login if row.managed else None


def acting_user(session: Session, configured: str) -> str:
    """The pyfi user acting in ``session``: the login role when it is a pyfi user, else ``configured``."""
    if session.get_bind().dialect.name != "postgresql":
        return configured
    row = session.execute(_CURRENT, {"group": GROUP}).one()
    return row.login if row.managed else configured
