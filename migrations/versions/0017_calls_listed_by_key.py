"""calls listed by key: ix_calls_lastupdated_id (lastupdated, id) replaces ix_calls_lastupdated

``ls calls`` orders by (lastupdated, id) and continues after a row by that
key (``--after``); one composite index serves both, at the cost of the one
it replaces for every recorded call.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_calls_lastupdated_id", "calls", ["lastupdated", "id"])
    op.drop_index("ix_calls_lastupdated", table_name="calls")


def downgrade() -> None:
    op.create_index("ix_calls_lastupdated", "calls", ["lastupdated"])
    op.drop_index("ix_calls_lastupdated_id", table_name="calls")
