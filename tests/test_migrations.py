"""The migrations build exactly the schema the models describe, on both backends."""
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import String

from pyfi.db import migrate
from pyfi.db.base import Base
from pyfi.db.engine import get_engine


def test_migrations_match_models(empty_db_url):
    migrate.upgrade(empty_db_url)
    with get_engine(empty_db_url).connect() as conn:
        options = {"compare_type": _sqlite_ignores_lengths} if conn.dialect.name == "sqlite" else {}
        diff = compare_metadata(MigrationContext.configure(conn, opts=options), Base.metadata)
    assert diff == []


def _sqlite_ignores_lengths(context, inspected_column, metadata_column, inspected_type, metadata_type):
    """SQLite does not enforce a VARCHAR's length (migration 0006 widens call ids on PostgreSQL only)."""
    if isinstance(inspected_type, String) and isinstance(metadata_type, String):
        return type(inspected_type.as_generic()) is not type(metadata_type.as_generic())
    return None  # alembic's own comparison


def test_migrations_downgrade_to_base_and_back(empty_db_url):
    from alembic import command

    migrate.upgrade(empty_db_url)
    command.downgrade(migrate.alembic_config(empty_db_url), "base")
    assert migrate.current_revision(empty_db_url) is None
    _, after = migrate.upgrade(empty_db_url)
    assert after == migrate.head_revision(empty_db_url)
