"""Workers' database logins: what a processor's code could steal is worth no more than its own records.

On PostgreSQL an agent never gives a worker its own login (the database
owner's). For each processor it runs, it makes a login role of the group
``pyfi_workers`` (migration 0010), named after the processor and the node,
and gives it a new random password each time it starts a worker. Row-level
security lets that login record only its processor's calls, events and
joins and read the network's objects; it can grant nothing, change no
object and read no private key. The role gets CONNECT on this database only.

The agent drops a processor's login when it stops running it, and, when it
starts, the logins of its node that belong to no processor any more.

On SQLite (single-user) a worker uses the database file itself.

Role statements are composed with ``psycopg2.sql`` and the password is sent
as a SCRAM verifier computed here (see :mod:`pyfi.core.pg_roles`).
"""
from __future__ import annotations

import hashlib
import secrets

from psycopg2 import sql
from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from pyfi.core import pg_roles
from pyfi.db.models import WorkerLogin
from pyfi.errors import PermissionDenied

GROUP = "pyfi_workers"
PREFIX = "pyfi_w_"

_ORPHANS = text(
    "SELECT r.rolname FROM pg_database d, aclexplode(d.datacl) a JOIN pg_roles r ON r.oid = a.grantee"
    " WHERE d.datname = current_database() AND a.privilege_type = 'CONNECT' AND starts_with(r.rolname, :prefix)"
    " AND pg_has_role(r.oid, 'pyfi_workers', 'MEMBER') AND r.rolname NOT IN (SELECT role FROM worker_logins)"
)


_AGENT_LOGIN = text(
    "SELECT (r.rolsuper OR (r.rolcreaterole AND pg_has_role(session_user, c.relowner, 'MEMBER'))) AS ok"
    " FROM pg_roles r, pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE r.rolname = session_user AND n.nspname = current_schema() AND c.relname = 'processors'"
)


def check_agent_login(session: Session) -> None:
    """An agent runs over the database owner's login, which may create roles: it makes its workers' logins."""
    if session.get_bind().dialect.name != "postgresql":
        return
    row = session.execute(_AGENT_LOGIN).first()
    if row is None or not row.ok:
        raise PermissionDenied("an agent needs the database owner's login, with CREATEROLE: it gives each "
                               "processor's workers a database login of their own",
                               "start the agent with the URI of the login that ran `pyfi db init` (--db or PYFI_DB)")


def role_name(processor_id: str, node: str) -> str:
    """The login of a processor's workers on a node (unique on the server: processor ids are UUIDs)."""
    return PREFIX + hashlib.sha256(f"{processor_id}/{node}".encode()).hexdigest()[:24]


def issue(session: Session, processor_id: str, node: str) -> tuple[str, str]:
    """(role, password) for a worker of ``processor_id`` on ``node``: the role made if needed, a new password set.

    The caller builds the worker's database URL from them. Needs the database
    owner's login (CREATEROLE); in the caller's transaction.
    """
    role, password = role_name(processor_id, node), secrets.token_urlsafe(24)
    verifier = sql.Literal(pg_roles.verifier(session, role, password))
    exists = session.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :role"), {"role": role}).first()
    if exists:
        statement = sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), verifier)
    else:
        statement = sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE {}").format(
            sql.Identifier(role), verifier, sql.Identifier(GROUP))
    pg_roles.execute(session, role, statement)
    pg_roles.execute(session, role, sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
        sql.Identifier(pg_roles.database(session)), sql.Identifier(role)))
    if session.get(WorkerLogin, role) is None:
        session.add(WorkerLogin(role=role, processor_id=processor_id, node=node))
        session.flush()
    return role, password


def retire(session: Session, role: str) -> None:
    """Drop a workers' login (its connections end with its workers)."""
    session.execute(delete(WorkerLogin).where(WorkerLogin.role == role))
    _drop(session, role)


def sweep(session: Session, node: str, keep: set[str]) -> list[str]:
    """Drop the logins of ``node`` whose processor is not in ``keep``, and those whose processor is gone."""
    stale = [row.role for row in session.scalars(select(WorkerLogin).where(WorkerLogin.node == node))
             if row.processor_id not in keep]
    for role in stale:
        retire(session, role)
    orphans = list(session.execute(_ORPHANS, {"prefix": PREFIX}).scalars())
    for role in orphans:
        _drop(session, role)
    return stale + orphans


def _drop(session: Session, role: str) -> None:
    if session.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :role"), {"role": role}).first() is None:
        return
    pg_roles.execute(session, role, sql.SQL("REVOKE CONNECT ON DATABASE {} FROM {}").format(
        sql.Identifier(pg_roles.database(session)), sql.Identifier(role)))
    pg_roles.execute(session, role, sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
