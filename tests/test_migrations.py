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


def test_0007_keeps_the_agents_workers_and_lets_a_worker_have_no_agent(empty_db_url):
    import datetime as dt

    from alembic import command
    from sqlalchemy import select, text

    from pyfi.db.engine import session_scope
    from pyfi.db.models import Processor, Worker

    command.upgrade(migrate.alembic_config(empty_db_url), "0006")
    with session_scope(empty_db_url) as session:  # the rows as 0006 has them (the models are the head's)
        now = {"c": dt.datetime(2026, 11, 27)}
        for statement in ("INSERT INTO nodes (id, name, created, lastupdated) VALUES ('nd', 'n1', :c, :c)",
                          "INSERT INTO agents (id, name, node_id, status, created, lastupdated)"
                          " VALUES ('ag', 'n1', 'nd', 'running', :c, :c)",
                          "INSERT INTO processors (id, name, module, gitrepo, workers, retries, beat, requested_status,"
                          " status, created, lastupdated) VALUES ('pr', 'p', 'm', 'g', 1, 0, false, 'ready', 'ready', :c, :c)",
                          "INSERT INTO workers (id, name, agent_id, processor_id, concurrency, status, created,"
                          " lastupdated) VALUES ('wk', 'p@n1', 'ag', 'pr', 1, 'starting', :c, :c)"):
            session.execute(text(statement), now)
    migrate.upgrade(empty_db_url)
    with session_scope(empty_db_url) as session:
        session.add(Worker(name="p.1@here", agent_id=None, processor=session.scalar(select(Processor))))
    with session_scope(empty_db_url) as session:
        assert sorted((w.name, w.agent.name if w.agent else None) for w in session.scalars(select(Worker))) == [
            ("p.1@here", None), ("p@n1", "n1")]
    command.downgrade(migrate.alembic_config(empty_db_url), "0006")  # a hand-started worker's row has no place there
    with session_scope(empty_db_url) as session:
        assert [w.name for w in session.scalars(select(Worker))] == ["p@n1"]
