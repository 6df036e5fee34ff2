"""scheduling: cordoned and draining nodes, deployments placed by a scheduler, the moves it made, timed sockets' ticks

- ``nodes.cordoned`` / ``nodes.draining`` (``pyfi node cordon|uncordon|drain``);
- ``deployments.scheduler_id``: the scheduler that placed it (none: added by hand);
- ``placements``: every move a scheduler made (processor, node, worker processes before and after, why);
- ``socket_ticks``: the last tick each timed socket fired for (pyfi.scheduler.beat).

PostgreSQL: placements are readable with any right; ticks are the database owner's alone (agents write them).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # In place: on SQLite a rebuilt `nodes` would cascade to its agents and their workers.
    op.add_column("nodes", sa.Column("cordoned", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("nodes", sa.Column("draining", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("deployments", schema=None) as batch_op:  # (nothing refers to deployments)
        batch_op.add_column(sa.Column("scheduler_id", sa.String(length=36), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_deployments_scheduler_id_schedulers"), "schedulers",
                                    ["scheduler_id"], ["id"], ondelete="CASCADE")
        batch_op.create_index(batch_op.f("ix_deployments_scheduler_id"), ["scheduler_id"], unique=False)
    op.create_table(
        "placements",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.Column("scheduler", sa.String(length=200), nullable=False),
        sa.Column("processor", sa.String(length=200), nullable=False),
        sa.Column("node", sa.String(length=200), nullable=False),
        sa.Column("before", sa.Integer(), nullable=False),
        sa.Column("after", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_placements")),
    )
    with op.batch_alter_table("placements", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_placements_created"), ["created"], unique=False)
    op.create_table(
        "socket_ticks",
        sa.Column("socket_id", sa.String(length=36), nullable=False),
        sa.Column("last_tick", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["socket_id"], ["sockets.id"], name=op.f("fk_socket_ticks_socket_id_sockets"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("socket_id", name=op.f("pk_socket_ticks")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("GRANT SELECT ON placements TO pyfi_users")
        op.execute("ALTER TABLE placements ENABLE ROW LEVEL SECURITY")
        op.execute("CREATE POLICY pyfi_read ON placements FOR SELECT USING (pyfi_has_any_right())")
        op.execute("ALTER TABLE socket_ticks ENABLE ROW LEVEL SECURITY")


def downgrade() -> None:
    op.drop_table("socket_ticks")
    op.drop_table("placements")
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deployments_scheduler_id"))
        batch_op.drop_constraint(batch_op.f("fk_deployments_scheduler_id_schedulers"), type_="foreignkey")
        batch_op.drop_column("scheduler_id")
    op.drop_column("nodes", "draining")  # in place (SQLite 3.35+): a rebuilt `nodes` would cascade
    op.drop_column("nodes", "cordoned")
