"""signed calls: a signing key per user and per processor, and who sent each call

- ``signing_keys``: Ed25519 keys (pyfi.messaging.signing), each a user's or
  a processor's. Every user added before gets one here.
- ``calls.sender``: who sent a call, as the worker that took it checked.
- PostgreSQL: pyfi users read the keys' public halves only (the private
  column is granted to no one); ``pyfi_my_signing_key()`` gives a pyfi
  user logged in as their own role their own private key. Row-level
  security: nobody but the database owner writes a key.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""
import uuid
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

GROUP = "pyfi_users"
PUBLIC_COLUMNS = ("id", "user_id", "processor_id", "public_key", "created")

MY_KEY = """
CREATE OR REPLACE FUNCTION {schema}.pyfi_my_signing_key() RETURNS TABLE (key_id text, private_key text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = {schema}, pg_temp AS $body$
  SELECT k.id::text, k.private_key::text FROM signing_keys k JOIN users u ON u.id = k.user_id
   WHERE u.name = session_user ORDER BY k.created DESC LIMIT 1
$body$
"""


def upgrade() -> None:
    op.create_table(
        "signing_keys",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=True),
        sa.Column("processor_id", sa.String(length=36), nullable=True),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("private_key", sa.String(length=64), nullable=True),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.CheckConstraint("(user_id IS NULL) <> (processor_id IS NULL)", name=op.f("ck_signing_keys_one_signer")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_signing_keys_user_id_users"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["processor_id"], ["processors.id"], name=op.f("fk_signing_keys_processor_id_processors"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signing_keys")),
    )
    with op.batch_alter_table("signing_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_signing_keys_user_id"), ["user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_signing_keys_processor_id"), ["processor_id"], unique=False)
    op.add_column("calls", sa.Column("sender", sa.String(length=200), nullable=True))  # no table rebuild on SQLite
    _key_for_every_user()
    if op.get_bind().dialect.name == "postgresql":
        _postgresql()


def _new_key_pair() -> tuple[str, str]:
    """An Ed25519 key as (private, public) hex, as pyfi.messaging.signing.new_key_pair makes them."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

    key = Ed25519PrivateKey.generate()
    return (key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()).hex(),
            key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex())


def _key_for_every_user() -> None:
    bind = op.get_bind()
    keys = sa.table("signing_keys", *(sa.column(c) for c in (*PUBLIC_COLUMNS, "private_key")))
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    for (user_id,) in bind.execute(sa.text("SELECT id FROM users")).all():
        private, public = _new_key_pair()
        bind.execute(keys.insert().values(id=str(uuid.uuid4()), user_id=user_id, processor_id=None, public_key=public,
                                          private_key=private, created=now))


def _postgresql() -> None:
    from psycopg2 import sql

    bind = op.get_bind()
    raw = bind.connection.dbapi_connection
    schema = sql.Identifier(bind.execute(sa.text("SELECT current_schema()")).scalar_one())
    group = sql.Identifier(GROUP)
    statements = [
        sql.SQL(MY_KEY).format(schema=schema),
        sql.SQL("REVOKE ALL ON FUNCTION pyfi_my_signing_key() FROM PUBLIC"),
        sql.SQL("GRANT EXECUTE ON FUNCTION pyfi_my_signing_key() TO {}").format(group),
        sql.SQL("GRANT SELECT ({}) ON signing_keys TO {}").format(
            sql.SQL(", ").join(map(sql.Identifier, PUBLIC_COLUMNS)), group),
        sql.SQL("ALTER TABLE signing_keys ENABLE ROW LEVEL SECURITY"),
        sql.SQL("CREATE POLICY pyfi_read ON signing_keys FOR SELECT USING (true)"),
    ]
    with raw.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS pyfi_my_signing_key()")
    op.drop_column("calls", "sender")  # SQLite 3.35+ drops a column in place (a rebuild would cascade to events)
    op.drop_table("signing_keys")
