"""pending and cancelled calls: a sender records its calls as pending; pyfi task cancel

- ``calls.cancelled_by`` / ``calls.cancelled`` / ``calls.terminate``: who
  cancelled a call, when, and whether a running one is to be stopped.

PostgreSQL, for pyfi users' own logins:

- a user holding RUN_TASK may insert a call only as ``pending``, sent by
  themselves, to a socket, with nothing a worker records (no result, error,
  start, finish or cancellation);
- a user holding CANCEL_TASK may read calls and turn one that has not ended
  (pending, received, running, retry) into ``cancelled``, by themselves; the
  columns they may change are the state, the cancellation's and
  ``lastupdated``, nothing else.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

#: the states a call can be cancelled in (it has not ended)
OPEN = "('pending', 'received', 'running', 'retry')"
SENT = ("state = 'pending' AND sender = session_user AND socket_id IS NOT NULL AND pyfi_has_right('RUN_TASK')"
        " AND resultkey IS NULL AND error IS NULL AND started IS NULL AND finished IS NULL"
        " AND cancelled_by IS NULL AND cancelled IS NULL AND terminate IS NULL")
CANCEL_COLUMNS = ("state", "cancelled_by", "cancelled", "terminate", "lastupdated")
POLICIES = ("pyfi_send", "pyfi_cancel_read", "pyfi_cancel")


def upgrade() -> None:
    op.add_column("calls", sa.Column("cancelled_by", sa.String(length=200), nullable=True))
    op.add_column("calls", sa.Column("cancelled", sa.DateTime(), nullable=True))
    op.add_column("calls", sa.Column("terminate", sa.Boolean(), nullable=True))
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("GRANT INSERT ON calls TO pyfi_users")
    op.execute(f"GRANT UPDATE ({', '.join(CANCEL_COLUMNS)}) ON calls TO pyfi_users")
    op.execute(f"CREATE POLICY pyfi_send ON calls FOR INSERT TO pyfi_users WITH CHECK ({SENT})")
    op.execute("CREATE POLICY pyfi_cancel_read ON calls FOR SELECT TO pyfi_users USING (pyfi_has_right('CANCEL_TASK'))")
    op.execute(f"CREATE POLICY pyfi_cancel ON calls FOR UPDATE TO pyfi_users"
               f" USING (pyfi_has_right('CANCEL_TASK') AND state IN {OPEN})"
               f" WITH CHECK (state = 'cancelled' AND cancelled_by = session_user AND cancelled IS NOT NULL)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for policy in POLICIES:
            op.execute(f"DROP POLICY IF EXISTS {policy} ON calls")
        op.execute(f"REVOKE UPDATE ({', '.join(CANCEL_COLUMNS)}) ON calls FROM pyfi_users")
        op.execute("REVOKE INSERT ON calls FROM pyfi_users")
    for column in ("terminate", "cancelled", "cancelled_by"):  # in place: a rebuilt `calls` would cascade to events
        op.execute(f"ALTER TABLE calls DROP COLUMN {column}")
