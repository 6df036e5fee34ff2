"""access control in the database: pyfi_users group, table grants, row-level security

PostgreSQL only (SQLite is single-user; enforcement there is in core only).

- ``pyfi_users``: a NOLOGIN group role (cluster-wide, created once, never
  dropped) that every pyfi user's login role joins (``pyfi.core.pg_roles``).
  It holds the table grants; ``users.password_hash`` is not readable by it.
- ``pyfi_has_right(right)``: true when ``current_user`` holds the right, or
  ALL, directly or through a pyfi role; read on every call (no cache).
- Row-level security on the owned object tables (queues, processors,
  sockets, plugs): anyone may read; inserting needs ADD_<KIND> and
  ``owner = current_user``; updating needs ownership or UPDATE; deleting
  needs DELETE_<KIND> and ownership or DELETE. The same rule as core's.
- Row-level security on the access tables (users, roles, privileges,
  user_roles): each write needs its right (ADD_USER, UPDATE_PRIVILEGE ...).

The table owner (the login that ran the migrations, e.g. postgres) bypasses
row-level security, as PostgreSQL does for owners. Tables added by later
migrations need their own grants.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""
from alembic import op
import sqlalchemy as sa

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

GROUP = "pyfi_users"
OWNED = {"queues": "QUEUE", "processors": "PROCESSOR", "sockets": "SOCKET", "plugs": "PLUG"}
#: access table -> (insert right, update right, delete rights)
ACCESS = {
    "users": ("ADD_USER", "UPDATE_USER", ("DELETE_USER",)),
    "roles": ("ADD_ROLE", "UPDATE_ROLE", ("DELETE_ROLE",)),
    "privileges": ("ADD_PRIVILEGE", "UPDATE_PRIVILEGE", ("DELETE_PRIVILEGE",)),
    "user_roles": ("UPDATE_USER", "UPDATE_USER", ("UPDATE_USER", "DELETE_USER", "DELETE_ROLE")),
}
READ_WRITE = ("queues", "processors", "tasks", "arguments", "sockets", "plugs", "calls", "events", "nodes", "agents",
              "workers", "schedulers", "scheduler_nodes", "deployments", "networks", "network_nodes",
              "join_arrivals", "call_parents", "roles", "privileges", "user_roles")
USER_READABLE = ("id", "name", "owner", "created", "lastupdated", "email")
USER_WRITABLE = ("email", "password_hash", "lastupdated")
POLICIES = ("pyfi_read", "pyfi_add", "pyfi_change", "pyfi_remove")

CREATE_GROUP = """
DO $do$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pyfi_users') THEN
    CREATE ROLE pyfi_users NOLOGIN;
  END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;  -- another database created it meanwhile
END $do$
"""

HAS_RIGHT = """
CREATE OR REPLACE FUNCTION {schema}.pyfi_has_right(wanted text) RETURNS boolean
LANGUAGE sql STABLE SET search_path = {schema}, pg_temp AS $body$
  SELECT EXISTS (
    SELECT 1 FROM privileges p JOIN users u ON u.id = p.user_id
     WHERE u.name = current_user AND p."right" IN (wanted, 'ALL'))
  OR EXISTS (
    SELECT 1 FROM privileges p JOIN user_roles ur ON ur.role_id = p.role_id JOIN users u ON u.id = ur.user_id
     WHERE u.name = current_user AND p."right" IN (wanted, 'ALL'))
$body$
"""


def _runner(bind):
    """Execute psycopg2 ``sql`` compositions on the migration's own connection and transaction."""
    raw = bind.connection.dbapi_connection

    def run(statement) -> None:
        with raw.cursor() as cursor:
            cursor.execute(statement)

    return run


def _owned_policies(sql, table: str, kind: str) -> list:
    t, has = sql.Identifier(table), sql.SQL("pyfi_has_right({})").format
    mine = sql.SQL("owner = current_user")
    change = sql.SQL("({} OR {})").format(mine, has(sql.Literal("UPDATE")))
    remove = sql.SQL("({} AND ({} OR {}))").format(has(sql.Literal(f"DELETE_{kind}")), mine, has(sql.Literal("DELETE")))
    add = sql.SQL("({} AND {})").format(mine, has(sql.Literal(f"ADD_{kind}")))
    return [
        sql.SQL("CREATE POLICY pyfi_read ON {} FOR SELECT USING (true)").format(t),
        sql.SQL("CREATE POLICY pyfi_add ON {} FOR INSERT WITH CHECK {}").format(t, add),
        sql.SQL("CREATE POLICY pyfi_change ON {} FOR UPDATE USING {} WITH CHECK {}").format(t, change, change),
        sql.SQL("CREATE POLICY pyfi_remove ON {} FOR DELETE USING {}").format(t, remove),
    ]


def _access_policies(sql, table: str, add: str, change: str, remove: tuple) -> list:
    t, has = sql.Identifier(table), sql.SQL("pyfi_has_right({})").format
    removers = sql.SQL(" OR ").join(has(sql.Literal(r)) for r in remove)
    return [
        sql.SQL("CREATE POLICY pyfi_read ON {} FOR SELECT USING (true)").format(t),
        sql.SQL("CREATE POLICY pyfi_add ON {} FOR INSERT WITH CHECK ({})").format(t, has(sql.Literal(add))),
        sql.SQL("CREATE POLICY pyfi_change ON {} FOR UPDATE USING ({})").format(t, has(sql.Literal(change))),
        sql.SQL("CREATE POLICY pyfi_remove ON {} FOR DELETE USING ({})").format(t, removers),
    ]


def _grants(sql, schema: str) -> list:
    group, ids = sql.Identifier(GROUP), lambda names: sql.SQL(", ").join(map(sql.Identifier, names))
    return [
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema), group),
        sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON {} TO {}").format(ids(READ_WRITE), group),
        sql.SQL("GRANT SELECT ({}) ON users TO {}").format(ids(USER_READABLE), group),
        sql.SQL("GRANT UPDATE ({}) ON users TO {}").format(ids(USER_WRITABLE), group),
        sql.SQL("GRANT INSERT, DELETE ON users TO {}").format(group),
        sql.SQL("GRANT SELECT ON alembic_version TO {}").format(group),
    ]


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    from psycopg2 import sql

    schema = bind.execute(sa.text("SELECT current_schema()")).scalar_one()
    run = _runner(bind)
    run(CREATE_GROUP)
    run(sql.SQL(HAS_RIGHT).format(schema=sql.Identifier(schema)))
    for statement in _grants(sql, schema):
        run(statement)
    for table, kind in OWNED.items():
        run(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(sql.Identifier(table)))
        for statement in _owned_policies(sql, table, kind):
            run(statement)
    for table, (add, change, remove) in ACCESS.items():
        run(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(sql.Identifier(table)))
        for statement in _access_policies(sql, table, add, change, remove):
            run(statement)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    from psycopg2 import sql

    run = _runner(bind)
    for table in (*OWNED, *ACCESS):
        for policy in POLICIES:
            run(sql.SQL("DROP POLICY IF EXISTS {} ON {}").format(sql.Identifier(policy), sql.Identifier(table)))
        run(sql.SQL("ALTER TABLE {} DISABLE ROW LEVEL SECURITY").format(sql.Identifier(table)))
    tables = sql.SQL(", ").join(map(sql.Identifier, (*READ_WRITE, "users", "alembic_version")))
    run(sql.SQL("REVOKE ALL ON {} FROM {}").format(tables, sql.Identifier(GROUP)))
    run(sql.SQL("DROP FUNCTION IF EXISTS pyfi_has_right(text)"))
