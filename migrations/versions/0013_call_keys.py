"""call keys: a processor's workers get the key that checks each sender's calls to that processor, and only it

A call to processor P is signed with HMAC-SHA256 under the sender's call
key for P, ``sha256(sha256('pyfi-calls\\n' || secret) || P's id)``
(pyfi.messaging.signing). ``pyfi_call_key(key)`` gives a workers' login
(pyfi_workers) that key's call key for the login's own processor: it runs as
the table owner, reads the secret half no login may read, and returns only
the derived key, from which no other processor's call key can be made.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

CALL_KEY = """
CREATE OR REPLACE FUNCTION {schema}.pyfi_call_key(wanted text) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = {schema}, pg_temp AS $body$
  SELECT encode(sha256(sha256(convert_to('pyfi-calls' || chr(10), 'UTF8') || decode(k.private_key, 'hex'))
                       || convert_to(w.processor_id, 'UTF8')), 'hex')
    FROM signing_keys k, worker_logins w WHERE k.id = wanted AND w.role = session_user
$body$
"""


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    from psycopg2 import sql

    schema = sql.Identifier(bind.execute(sa.text("SELECT current_schema()")).scalar_one())
    with bind.connection.dbapi_connection.cursor() as cursor:
        cursor.execute(sql.SQL(CALL_KEY).format(schema=schema))
        cursor.execute("REVOKE ALL ON FUNCTION pyfi_call_key(text) FROM PUBLIC")
        cursor.execute("GRANT EXECUTE ON FUNCTION pyfi_call_key(text) TO pyfi_workers")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS pyfi_call_key(text)")
