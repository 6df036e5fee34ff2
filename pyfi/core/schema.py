"""Database lifecycle as core operations: init, migrate, drop, dump."""
from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

from sqlalchemy import inspect, select

from pyfi.core.access import Actor, bootstrap_admin, require
from pyfi.db import migrate
from pyfi.db.base import Base
from pyfi.db.engine import check_initialized, get_engine, redact, session_scope
from pyfi.enums import Right
from pyfi.errors import NotInitialized
from pyfi.masking import mask_url

SECRET_COLUMNS = frozenset({"password_hash", "private_key"})  # a signing key's private half signs calls


def is_initialized(url: str) -> bool:
    return migrate.current_revision(url) is not None


def init(url: str, admin: str) -> bool:
    """Create the schema through the migrations and the bootstrap admin.

    Returns False (and changes nothing) when the schema exists already.
    """
    if is_initialized(url):
        return False
    migrate.upgrade(url)
    with session_scope(url) as session:
        bootstrap_admin(session, admin)
    return True


def check_current(url: str) -> None:
    """Raise NotInitialized when the schema is behind (or ahead of) this version of pyfi."""
    current, head = migrate.current_revision(url), migrate.head_revision(url)
    if current != head:
        raise NotInitialized(f"database {redact(url)} schema is at revision {current}, this pyfi needs {head}",
                             "run `pyfi db migrate`")


def upgrade(url: str, actor: Actor) -> tuple[str | None, str | None]:
    """Upgrade an initialized schema; an empty database goes through ``init`` (it creates the admin)."""
    check_initialized(url)
    _require_on(url, actor, Right.DB_INIT)
    return migrate.upgrade(url)


def drop(url: str, actor: Actor) -> None:
    _require_on(url, actor, Right.DB_DROP)
    migrate.drop(url)


def _require_on(url: str, actor: Actor, right: Right) -> None:
    """Check ``right`` when the schema exists (an empty database has no users yet)."""
    if not is_initialized(url):
        return
    with session_scope(url) as session:
        require(session, actor, right)


def dump(url: str, actor: Actor) -> dict[str, list[dict[str, Any]]]:
    """Every table as a list of rows, with JSON-friendly values."""
    check_initialized(url)
    _require_on(url, actor, Right.READ)
    engine = get_engine(url)
    out: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as conn:
        present = set(inspect(conn).get_table_names())
        for table in Base.metadata.sorted_tables:
            if table.name in present:
                columns = [c for c in table.c if c.name not in SECRET_COLUMNS]  # secrets never leave the database
                rows = conn.execute(select(*columns)).mappings()
                out[table.name] = [public(row) for row in rows]
    return out


def public(row: Any) -> dict[str, Any]:
    """A row safe to print: no password hashes, git credentials masked."""
    return {k: jsonable(mask_url(v) if k == "gitrepo" else v) for k, v in row.items() if k not in SECRET_COLUMNS}


def jsonable(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.hex()
    return value
