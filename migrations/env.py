"""Alembic environment for pyfi.

The URL comes from the Config object that ``pyfi.db.migrate`` builds (there
is no alembic.ini to keep in sync). ``render_as_batch`` makes ALTERs work on
SQLite, which cannot alter tables in place.
"""
from alembic import context

from pyfi.db import models  # noqa: F401 - registers every table on the metadata
from pyfi.db.base import Base
from pyfi.db.engine import get_engine

config = context.config


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=Base.metadata,
                      render_as_batch=True, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    with get_engine(config.get_main_option("sqlalchemy.url")).connect() as conn:
        _run(conn)
        conn.commit()


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
