"""worker logins: a processor's workers log in to the database as a role that can record only that processor's calls

- ``worker_logins``: which processor each workers' login role belongs to
  (pyfi.core.worker_logins; the agent makes the role, one per processor and
  node, with a new password at each worker start).
- PostgreSQL: the group ``pyfi_workers`` (cluster-wide, created once) holds
  the grants; its members read the network's objects and the keys' public
  halves, and under row-level security they may
  - record (insert, update) calls of their processor's sockets (or, without
    a socket, calls owned by their processor's owner), never delete one;
  - add events to those calls, and provenance (call_parents) for them or
    for the arrivals waiting at their plugs' joins;
  - add and take arrivals at the joins their processor's plugs lead to.
  ``pyfi_worker_processor()`` names the processor of the login in session.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

GROUP = "pyfi_workers"
READ = ("queues", "processors", "sockets", "plugs", "tasks", "arguments", "roles", "privileges", "user_roles",
        "alembic_version")
USER_COLUMNS = ("id", "name", "owner", "created", "lastupdated", "email")
KEY_COLUMNS = ("id", "user_id", "processor_id", "public_key", "created")
POLICIES = {
    "calls": ("pyfi_worker_read", "pyfi_worker_add", "pyfi_worker_change"),
    "events": ("pyfi_worker_read", "pyfi_worker_add"),
    "call_parents": ("pyfi_worker_read", "pyfi_worker_add"),
    "join_arrivals": ("pyfi_worker_all",),
}

CREATE_GROUP = """
DO $do$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pyfi_workers') THEN
    CREATE ROLE pyfi_workers NOLOGIN;
  END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;  -- another database created it meanwhile
END $do$
"""

FUNCTIONS = """
CREATE OR REPLACE FUNCTION {schema}.pyfi_worker_processor() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = {schema}, pg_temp AS $body$
  SELECT processor_id::text FROM worker_logins WHERE role = session_user
$body$;
CREATE OR REPLACE FUNCTION {schema}.pyfi_worker_sockets() RETURNS text[]
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = {schema}, pg_temp AS $body$
  SELECT coalesce(array_agg(s.id::text), '{{}}') FROM sockets s JOIN worker_logins w ON w.processor_id = s.processor_id
   WHERE w.role = session_user
$body$;
CREATE OR REPLACE FUNCTION {schema}.pyfi_worker_owner() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = {schema}, pg_temp AS $body$
  SELECT p.owner::text FROM processors p JOIN worker_logins w ON w.processor_id = p.id WHERE w.role = session_user
$body$;
CREATE OR REPLACE FUNCTION {schema}.pyfi_worker_joins() RETURNS text[]
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = {schema}, pg_temp AS $body$
  SELECT coalesce(array_agg(DISTINCT pl.target_id::text), '{{}}') FROM plugs pl JOIN sockets s ON s.id = pl.source_id
    JOIN worker_logins w ON w.processor_id = s.processor_id WHERE w.role = session_user
$body$
"""
FUNCTION_NAMES = ("pyfi_worker_processor()", "pyfi_worker_sockets()", "pyfi_worker_owner()", "pyfi_worker_joins()")

#: a call this login may see and record: of its processor's sockets, or socket-less and its processor owner's
MINE = ("(socket_id = ANY (CAST((SELECT pyfi_worker_sockets()) AS text[]))"
        " OR (socket_id IS NULL AND owner = (SELECT pyfi_worker_owner())))")
HAS_MY_CALL = "EXISTS (SELECT 1 FROM calls c WHERE c.id = {column})"
AT_MY_JOINS = "socket_id = ANY (CAST((SELECT pyfi_worker_joins()) AS text[]))"


def _statements(sql, schema) -> list:
    group = sql.Identifier(GROUP)
    ids = lambda names: sql.SQL(", ").join(map(sql.Identifier, names))  # noqa: E731
    to = sql.SQL("TO {}").format(group)
    mine, parent_is_mine = sql.SQL(MINE), sql.SQL(HAS_MY_CALL.format(column="parent_id"))
    waiting = sql.SQL("EXISTS (SELECT 1 FROM join_arrivals a WHERE a.call_id = parent_id)")
    return [
        sql.SQL(CREATE_GROUP),
        sql.SQL(FUNCTIONS).format(schema=schema),
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, group),
        sql.SQL("GRANT SELECT ON {} TO {}").format(ids(READ), group),
        sql.SQL("GRANT SELECT ({}) ON users TO {}").format(ids(USER_COLUMNS), group),
        sql.SQL("GRANT SELECT ({}) ON signing_keys TO {}").format(ids(KEY_COLUMNS), group),
        sql.SQL("GRANT SELECT, INSERT, UPDATE ON calls TO {}").format(group),
        sql.SQL("GRANT SELECT, INSERT ON events, call_parents TO {}").format(group),
        sql.SQL("GRANT SELECT, INSERT, DELETE ON join_arrivals TO {}").format(group),
        sql.SQL("CREATE POLICY pyfi_worker_read ON calls FOR SELECT {} USING {}").format(to, mine),
        sql.SQL("CREATE POLICY pyfi_worker_add ON calls FOR INSERT {} WITH CHECK {}").format(to, mine),
        sql.SQL("CREATE POLICY pyfi_worker_change ON calls FOR UPDATE {} USING {} WITH CHECK {}").format(to, mine, mine),
        sql.SQL("CREATE POLICY pyfi_worker_read ON events FOR SELECT {} USING ({})").format(
            to, sql.SQL(HAS_MY_CALL.format(column="call_id"))),
        sql.SQL("CREATE POLICY pyfi_worker_add ON events FOR INSERT {} WITH CHECK ({})").format(
            to, sql.SQL(HAS_MY_CALL.format(column="call_id"))),
        sql.SQL("CREATE POLICY pyfi_worker_read ON call_parents FOR SELECT {} USING ({} OR {})").format(
            to, parent_is_mine, sql.SQL(HAS_MY_CALL.format(column="call_id"))),
        sql.SQL("CREATE POLICY pyfi_worker_add ON call_parents FOR INSERT {} WITH CHECK ({} OR {})").format(
            to, parent_is_mine, waiting),
        sql.SQL("CREATE POLICY pyfi_worker_all ON join_arrivals FOR ALL {} USING ({}) WITH CHECK ({})").format(
            to, sql.SQL(AT_MY_JOINS), sql.SQL(AT_MY_JOINS)),
        sql.SQL("ALTER TABLE worker_logins ENABLE ROW LEVEL SECURITY"),  # no policy: the owner's alone
    ]


def upgrade() -> None:
    op.create_table(
        "worker_logins",
        sa.Column("role", sa.String(length=63), nullable=False),
        sa.Column("processor_id", sa.String(length=36), nullable=False),
        sa.Column("node", sa.String(length=200), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["processor_id"], ["processors.id"], name=op.f("fk_worker_logins_processor_id_processors"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("role", name=op.f("pk_worker_logins")),
    )
    with op.batch_alter_table("worker_logins", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_worker_logins_processor_id"), ["processor_id"], unique=False)
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    from psycopg2 import sql

    schema = sql.Identifier(bind.execute(sa.text("SELECT current_schema()")).scalar_one())
    with bind.connection.dbapi_connection.cursor() as cursor:
        for statement in _statements(sql, schema):
            cursor.execute(statement)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        from psycopg2 import sql

        with bind.connection.dbapi_connection.cursor() as cursor:
            for table, names in POLICIES.items():
                for name in names:
                    cursor.execute(sql.SQL("DROP POLICY IF EXISTS {} ON {}").format(sql.Identifier(name),
                                                                                   sql.Identifier(table)))
            tables = sql.SQL(", ").join(map(sql.Identifier, (*READ, "users", "signing_keys", *POLICIES)))
            cursor.execute(sql.SQL("REVOKE ALL ON {} FROM {}").format(tables, sql.Identifier(GROUP)))
            for function in FUNCTION_NAMES:
                cursor.execute(sql.SQL(f"DROP FUNCTION IF EXISTS {function}"))
    op.drop_table("worker_logins")
