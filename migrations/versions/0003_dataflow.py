"""dataflow: pending join arrivals and every parent of a call

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""
from alembic import op
import sqlalchemy as sa

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "join_arrivals",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tracking", sa.String(length=36), nullable=False),
        sa.Column("socket_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("call_id", sa.String(length=36), nullable=True),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["socket_id"], ["sockets.id"], name=op.f("fk_join_arrivals_socket_id_sockets"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_join_arrivals")),
        sa.UniqueConstraint("tracking", "socket_id", "position", name=op.f("uq_join_arrivals_tracking_socket_id_position")),
    )
    with op.batch_alter_table("join_arrivals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_join_arrivals_tracking"), ["tracking"], unique=False)
        batch_op.create_index(batch_op.f("ix_join_arrivals_socket_id"), ["socket_id"], unique=False)
    op.create_table(
        "call_parents",
        sa.Column("call_id", sa.String(length=36), nullable=False),
        sa.Column("parent_id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("call_id", "parent_id", name=op.f("pk_call_parents")),
    )
    with op.batch_alter_table("call_parents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_call_parents_parent_id"), ["parent_id"], unique=False)


def downgrade() -> None:
    op.drop_table("call_parents")
    op.drop_table("join_arrivals")
