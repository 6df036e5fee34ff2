"""PostgreSQL login roles for pyfi users.

On PostgreSQL every pyfi user is also a database role (``LOGIN``) and a
member of the group role ``pyfi_users``, which migration 0004 creates and
grants table access to. pyfi only ever changes or drops roles in that group:
a pre-existing role such as ``postgres`` is never altered or dropped.

Statements are composed with ``psycopg2.sql`` (``Identifier``/``Literal``),
never by string formatting, and run on the session's own connection, so they
commit or roll back with the rest of the operation. The password is sent as
a verifier computed on the client (``psycopg2.extensions.encrypt_password``,
SCRAM-SHA-256 by default), so the clear text reaches neither the server's
statement log nor any output; the echoed statement shows it masked.

Roles are cluster-wide, so each pyfi database gives CONNECT only to its own
users' roles (migration 0008 takes it from PUBLIC). A role that exists
already (a pyfi user of another database on the server) is adopted only when
asked (``add user --adopt``), which changes its password for every database
it logs in to; deleting a user of several databases only takes this one's
CONNECT away, and the role is dropped with its last database.
"""
from __future__ import annotations

import psycopg2
from psycopg2 import errorcodes, sql
from psycopg2.extensions import encrypt_password
from sqlalchemy import text
from sqlalchemy.orm import Session

from pyfi.errors import (
    AlreadyExists,
    InUse,
    InvalidInput,
    NotInitialized,
    PermissionDenied,
    PyfiError,
)

GROUP = "pyfi_users"
MASK = "*****"
MAX_NAME_BYTES = 63  # PostgreSQL's NAMEDATALEN - 1: longer names would be truncated silently
RESERVED = frozenset({"public", "none", "current_user", "session_user", "current_role", "user", "all", GROUP,
                      "pyfi_workers"})
#: prefixes of role names PostgreSQL (pg_) and pyfi (pyfi_w_: workers' logins, pyfi.core.worker_logins) keep
RESERVED_PREFIXES = ("pg_", "pyfi_w_")

ABSENT, MANAGED, FOREIGN = "absent", "managed", "foreign"

_STATE = text(
    "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :group) AS has_group,"
    " (SELECT rolname FROM pg_roles WHERE rolname = :name) AS role,"
    " EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid"
    "         JOIN pg_roles r ON r.oid = m.member WHERE g.rolname = :group AND r.rolname = :name) AS managed"
)

_OTHERS = text(
    "SELECT d.datname FROM pg_database d, aclexplode(d.datacl) a JOIN pg_roles r ON r.oid = a.grantee"
    " WHERE r.rolname = :name AND a.privilege_type = 'CONNECT' AND d.datname <> current_database()"
    " ORDER BY d.datname"
)


def enabled(session: Session) -> bool:
    """True on PostgreSQL, where pyfi users are database roles (never on SQLite)."""
    return session.get_bind().dialect.name == "postgresql"


def check_role_name(name: str) -> None:
    if len(name.encode()) > MAX_NAME_BYTES:
        raise InvalidInput(f"user name {name!r} is too long for a PostgreSQL role",
                           f"use at most {MAX_NAME_BYTES} bytes (UTF-8)")
    if "\x00" in name or name.lower() in RESERVED or name.lower().startswith(RESERVED_PREFIXES):
        raise InvalidInput(f"user name {name!r} is reserved by PostgreSQL or pyfi",
                           "choose another name (not pg_..., pyfi_w_..., public, none, current_user, pyfi_users ...)")


def state(session: Session, name: str) -> str:
    """ABSENT (no such role), MANAGED (a pyfi user's role) or FOREIGN (any other role)."""
    row = session.execute(_STATE, {"group": GROUP, "name": name}).one()
    if not row.has_group:
        raise NotInitialized(f"the database role {GROUP!r} is missing", "run `pyfi db migrate` as the database owner")
    if row.role is None:
        return ABSENT
    return MANAGED if row.managed else FOREIGN


def is_managed(session: Session, name: str) -> bool:
    """True when ``name`` is a role pyfi made (a member of ``pyfi_users``)."""
    return state(session, name) == MANAGED


def create(session: Session, name: str, password: str, adopt: bool = False) -> str:
    """Create the login role of a new pyfi user (or, with ``adopt``, take over an existing one); return the echo."""
    check_role_name(name)
    current = state(session, name)
    if current == FOREIGN:
        raise AlreadyExists(f"database role {name!r} exists and is not a pyfi user",
                            f"choose another name: pyfi only manages roles in the {GROUP} group")
    secret = verifier(session, name, password)
    if current == ABSENT:
        execute(session, name, sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE {}").format(
            sql.Identifier(name), sql.Literal(secret), sql.Identifier(GROUP)))
        _grant_connect(session, name)
        return echo(session, name)
    others = other_databases(session, name)
    if not adopt:
        whose = f"a pyfi user of database {', '.join(others)}" if others else "made by a pyfi database"
        raise AlreadyExists(f"database role {name!r} already exists on this server ({whose})",
                            "choose another name, or pass --adopt to make that role this database's user too "
                            "(its password becomes the one given here, for every database it logs in to)")
    execute(session, name, sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(name), sql.Literal(secret)))
    _grant_connect(session, name)
    also = f" (it is a user of {', '.join(others)} too)" if others else ""
    return (f"ALTER USER {quote(session, name)} WITH PASSWORD '{MASK}': the existing role is adopted and its "
            f"password changed for every database it logs in to{also}")


def set_password(session: Session, name: str, password: str) -> None:
    """Change a pyfi user's database password (creating the role if they had none)."""
    current = state(session, name)
    if current == FOREIGN:
        raise PermissionDenied(f"database role {name!r} is not managed by pyfi",
                               "change its password in PostgreSQL (ALTER ROLE ... PASSWORD)")
    if current == ABSENT:
        create(session, name, password)
        return
    execute(session, name, sql.SQL("ALTER ROLE {} PASSWORD {}").format(
        sql.Identifier(name), sql.Literal(verifier(session, name, password))))


def drop(session: Session, name: str) -> str | None:
    """Take a pyfi user's role from this database, dropping it unless other databases have it; the echo, if any.

    Roles pyfi did not make are left alone (None).
    """
    if state(session, name) != MANAGED:
        return None
    execute(session, name, sql.SQL("REVOKE CONNECT ON DATABASE {} FROM {}").format(
        sql.Identifier(database(session)), sql.Identifier(name)))
    others = other_databases(session, name)
    if others:
        return f"REVOKE CONNECT ON DATABASE {database(session)} FROM {quote(session, name)} (the role stays: it is a " \
               f"user of {', '.join(others)})"
    execute(session, name, sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))
    return f"DROP USER {quote(session, name)}"


def other_databases(session: Session, name: str) -> list[str]:
    """The other databases that give ``name`` CONNECT of their own: the pyfi databases it is a user of."""
    return list(session.execute(_OTHERS, {"name": name}).scalars())


def _grant_connect(session: Session, name: str) -> None:
    execute(session, name, sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
        sql.Identifier(database(session)), sql.Identifier(name)))


def database(session: Session) -> str:
    return session.execute(text("SELECT current_database()")).scalar_one()


def echo(session: Session, name: str) -> str:
    """The original pyfi documentation's ``CREATE USER joe WITH PASSWORD '...'`` line, password masked."""
    return f"CREATE USER {quote(session, name)} WITH PASSWORD '{MASK}'"


def quote(session: Session, name: str) -> str:
    """``name`` as PostgreSQL would write the identifier (quoted only when needed), for display."""
    return session.execute(text("SELECT quote_ident(:name)"), {"name": name}).scalar_one()


def verifier(session: Session, name: str, password: str) -> str:
    if "\x00" in password:
        raise InvalidInput("a password cannot contain a NUL character", "choose another password")
    return encrypt_password(password, name, _raw(session))


def _raw(session: Session):  # noqa: ANN202 - a psycopg2 connection
    return session.connection().connection.dbapi_connection


def execute(session: Session, name: str, statement: sql.Composed) -> None:
    try:
        with _raw(session).cursor() as cursor:
            cursor.execute(statement)
    except psycopg2.Error as exc:
        raise _translate(exc, name) from exc


def _translate(exc: psycopg2.Error, name: str) -> Exception:
    first = (exc.pgerror or str(exc)).strip().splitlines()[0] if (exc.pgerror or str(exc)) else type(exc).__name__
    if exc.pgcode == errorcodes.INSUFFICIENT_PRIVILEGE:
        return PermissionDenied(f"the database login cannot manage role {name!r}: {first}",
                                "run user administration as the database owner (a login with CREATEROLE)")
    if exc.pgcode == errorcodes.DUPLICATE_OBJECT:
        return AlreadyExists(f"database role {name!r} already exists", "choose another name")
    if exc.pgcode == errorcodes.DEPENDENT_OBJECTS_STILL_EXIST:
        return InUse(f"database role {name!r} still owns or holds objects: {first}",
                     "REASSIGN OWNED / DROP OWNED for that role in PostgreSQL first")
    if exc.pgcode in (errorcodes.RESERVED_NAME, errorcodes.INVALID_NAME):
        return InvalidInput(f"{name!r} cannot be a PostgreSQL role: {first}", "choose another name")
    return PyfiError(f"PostgreSQL refused a role change for {name!r}: {first}", "see the server log")
