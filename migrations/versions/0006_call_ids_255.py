"""call ids up to 255 characters: a call's id is its task id, and a Celery client may choose any

pyfi sends UUIDs (36 characters), but a plain Celery client can send a call
to a pyfi socket with an id of its own; with 36-character columns such a call
could not be recorded on PostgreSQL. Widening a varchar is a catalog change
there (no table rewrite). SQLite does not enforce a VARCHAR's length, so its
tables are left as they are: rebuilding ``calls`` would cascade to its events.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

#: (table, column) holding a call id, referenced columns before the columns referring to them
COLUMNS = (
    ("calls", "id"), ("calls", "parent"), ("calls", "taskparent"), ("calls", "tracking"),
    ("events", "call_id"), ("join_arrivals", "tracking"), ("join_arrivals", "call_id"),
    ("call_parents", "call_id"), ("call_parents", "parent_id"),
)


def upgrade() -> None:
    _resize(sa.String(36), sa.String(255))


def downgrade() -> None:
    _resize(sa.String(255), sa.String(36))  # fails if a longer id was stored: nothing is cut silently


def _resize(old: sa.String, new: sa.String) -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for table, column in COLUMNS:
        op.alter_column(table, column, type_=new, existing_type=old)
