"""a worker started by hand (``pyfi worker start``) is listed too: its row has no agent

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workers", schema=None) as batch_op:  # SQLite: the table is rebuilt (nothing refers to it)
        batch_op.alter_column("agent_id", existing_type=sa.String(36), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM workers WHERE agent_id IS NULL")  # rows of running hand-started workers: they re-list
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.alter_column("agent_id", existing_type=sa.String(36), nullable=False)
