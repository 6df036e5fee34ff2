"""api tokens: the bearer tokens users log in for (``POST /api/token``, ``pyfi login``)

- ``api_tokens``: the sha256 of each token (never the token), its user, when
  it was issued, when it expires, when it was revoked and last used.

PostgreSQL: the table is the database owner's alone (no grant to
``pyfi_users``, row-level security on with no policy): a pyfi user's own
login can neither read the digests nor issue itself a token. The API server
and ``pyfi login`` use the owner's login, as agents do.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.Column("expires", sa.DateTime(), nullable=False),
        sa.Column("revoked", sa.DateTime(), nullable=True),
        sa.Column("last_used", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_api_tokens_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("digest", name=op.f("uq_api_tokens_digest")),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_tokens_user_id"), ["user_id"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("REVOKE ALL ON api_tokens FROM PUBLIC")
        op.execute("ALTER TABLE api_tokens ENABLE ROW LEVEL SECURITY")  # no policy: the owner's alone


def downgrade() -> None:
    op.drop_table("api_tokens")
