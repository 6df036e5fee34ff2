"""The migrations build exactly the schema the models describe, on both backends."""
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from pyfi.db import migrate
from pyfi.db.base import Base
from pyfi.db.engine import get_engine


def test_migrations_match_models(empty_db_url):
    migrate.upgrade(empty_db_url)
    with get_engine(empty_db_url).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_migrations_downgrade_to_base_and_back(empty_db_url):
    from alembic import command

    migrate.upgrade(empty_db_url)
    command.downgrade(migrate.alembic_config(empty_db_url), "base")
    assert migrate.current_revision(empty_db_url) is None
    _, after = migrate.upgrade(empty_db_url)
    assert after == migrate.head_revision(empty_db_url)
