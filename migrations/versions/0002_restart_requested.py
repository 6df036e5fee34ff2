"""processor restart requests carry a timestamp

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("processors", schema=None) as batch_op:
        batch_op.add_column(sa.Column("restart_requested", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("processors", schema=None) as batch_op:
        batch_op.drop_column("restart_requested")
