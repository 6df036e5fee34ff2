"""event workers: ``events.worker`` names the worker process that recorded a call's step

A call run twice (redelivered after its worker was killed) gets the events
of each run, each naming its worker: ``ls call --id`` shows where it ran.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("events", sa.Column("worker", sa.String(length=200), nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE events DROP COLUMN worker")  # in place: SQLite would otherwise rebuild the table
