"""Schema lifecycle through alembic: init (create via migrations), upgrade, drop."""
from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.exc import DBAPIError, OperationalError

from pyfi.db.base import Base
from pyfi.db.engine import get_engine, is_refused, refused, unavailable


#: row-level security policies may name other tables (a worker's login's): they go first
DROP_POLICIES = """
DO $drop$ DECLARE p record; BEGIN
  FOR p IN SELECT policyname, tablename FROM pg_policies WHERE schemaname = current_schema() LOOP
    EXECUTE 'DROP POLICY IF EXISTS ' || quote_ident(p.policyname) || ' ON ' || quote_ident(p.tablename);
  END LOOP;
END $drop$
"""
DROP_FUNCTIONS = """
DO $drop$ DECLARE f regprocedure; BEGIN
  FOR f IN SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = current_schema() AND starts_with(p.proname, 'pyfi_') LOOP
    EXECUTE 'DROP FUNCTION IF EXISTS ' || f::text || ' CASCADE';
  END LOOP;
END $drop$
"""


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("pyfi.migrations")))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def current_revision(url: str) -> str | None:
    try:
        with get_engine(url).connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except OperationalError as exc:
        raise unavailable(url, exc) from exc


def head_revision(url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


def upgrade(url: str) -> tuple[str | None, str | None]:
    """Upgrade to head; return (revision before, revision after)."""
    before = current_revision(url)
    try:
        command.upgrade(alembic_config(url), "head")
    except OperationalError as exc:
        raise unavailable(url, exc) from exc
    except DBAPIError as exc:
        if is_refused(exc):
            raise refused(exc) from exc
        raise
    return before, current_revision(url)


def drop(url: str) -> None:
    """Drop every pyfi table and the alembic version table."""
    engine = get_engine(url)
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(DROP_POLICIES)
            Base.metadata.drop_all(conn)
            if inspect(conn).has_table("alembic_version"):
                conn.exec_driver_sql("DROP TABLE alembic_version")
            if conn.dialect.name == "postgresql":  # the migrations' functions (rights checks, guards) outlive no table
                conn.exec_driver_sql(DROP_FUNCTIONS)
    except OperationalError as exc:
        raise unavailable(url, exc) from exc
    except DBAPIError as exc:
        if is_refused(exc):  # a login that does not own the schema: PermissionDenied, not a traceback
            raise refused(exc) from exc
        raise
