"""drop ix_calls_socket_id: ix_calls_socket_started (socket_id, started) serves every lookup by socket

Every recorded call is written into each index of ``calls``; this one only
repeated the leading column of the composite index.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_calls_socket_id", table_name="calls")


def downgrade() -> None:
    op.create_index("ix_calls_socket_id", "calls", ["socket_id"])
