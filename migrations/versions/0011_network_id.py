"""the network's id: its pub/sub channels carry it, so two networks on one Redis server never hear each other

Redis pub/sub is server-wide (database numbers do not separate channels), so
every channel is prefixed with ``pyfi:<id>:`` (pyfi.core.network). One row,
made here; readable by every pyfi user and worker login.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""
import uuid
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "installation",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_installation")),
    )
    table = sa.table("installation", sa.column("id"), sa.column("created"))
    op.get_bind().execute(table.insert().values(id=str(uuid.uuid4()),
                                                created=datetime.now(timezone.utc).replace(tzinfo=None)))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("GRANT SELECT ON installation TO pyfi_users, pyfi_workers")
        op.execute("ALTER TABLE installation ENABLE ROW LEVEL SECURITY")
        op.execute("CREATE POLICY pyfi_read ON installation FOR SELECT USING (true)")


def downgrade() -> None:
    op.drop_table("installation")
