"""reading needs a right: a pyfi login with no right at all reads nothing but its own user and privileges

Over migrations 0008 and 0010 (PostgreSQL only):

- The network's objects (queues, processors, sockets, plugs, tasks, nodes,
  agents, workers, schedulers, deployments, networks, the keys' public
  halves, the network's id) are readable by a pyfi user who holds any
  right, as the CLI shows them to whoever may act on them; a user with no
  right reads none of them. The access tables (users, roles, privileges,
  user_roles) likewise, except that everyone reads their own user row,
  privileges and roles (``pyfi whoami``). History keeps needing READ.
- Workers' logins (``pyfi_workers``) read the objects as before.
- ``pyfi_has_right`` and the new ``pyfi_has_any_right`` run as the table
  owner (SECURITY DEFINER, search_path pinned): they read the privileges
  that row-level security now hides, without looking at their own policies.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

OBJECTS = ("queues", "processors", "sockets", "plugs", "tasks", "arguments", "nodes", "agents", "workers",
           "schedulers", "deployments", "networks", "scheduler_nodes", "network_nodes", "signing_keys", "installation")
#: what workers read (their spec, plugs, the rights and keys their gate checks)
WORKERS_READ = ("queues", "processors", "sockets", "plugs", "tasks", "arguments", "signing_keys", "installation",
                "users", "roles", "privileges", "user_roles")
OWN_ROWS = {
    "users": "name = session_user",
    "privileges": "user_id = (SELECT u.id FROM users u WHERE u.name = session_user)"
                  " OR role_id IN (SELECT ur.role_id FROM user_roles ur JOIN users u ON u.id = ur.user_id"
                  " WHERE u.name = session_user)",
    "user_roles": "user_id = (SELECT u.id FROM users u WHERE u.name = session_user)",
    "roles": "id IN (SELECT ur.role_id FROM user_roles ur JOIN users u ON u.id = ur.user_id WHERE u.name = session_user)",
}

FUNCTIONS = """
CREATE OR REPLACE FUNCTION {schema}.pyfi_has_right(wanted text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = {schema}, pg_temp AS $body$
  SELECT EXISTS (
    SELECT 1 FROM privileges p JOIN users u ON u.id = p.user_id
     WHERE u.name = session_user AND p."right" IN (wanted, 'ALL'))
  OR EXISTS (
    SELECT 1 FROM privileges p JOIN user_roles ur ON ur.role_id = p.role_id JOIN users u ON u.id = ur.user_id
     WHERE u.name = session_user AND p."right" IN (wanted, 'ALL'))
$body$;
CREATE OR REPLACE FUNCTION {schema}.pyfi_has_any_right() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = {schema}, pg_temp AS $body$
  SELECT EXISTS (SELECT 1 FROM privileges p JOIN users u ON u.id = p.user_id WHERE u.name = session_user)
      OR EXISTS (SELECT 1 FROM privileges p JOIN user_roles ur ON ur.role_id = p.role_id
                   JOIN users u ON u.id = ur.user_id WHERE u.name = session_user)
$body$
"""


def _statements(sql, schema) -> list:
    statements = [sql.SQL(FUNCTIONS).format(schema=schema)]
    for table in (*OBJECTS, *OWN_ROWS):
        t = sql.Identifier(table)
        readable = sql.SQL("(pyfi_has_any_right())")
        if table in OWN_ROWS:
            readable = sql.SQL("(pyfi_has_any_right() OR {})").format(sql.SQL(OWN_ROWS[table]))
        statements += [sql.SQL("DROP POLICY IF EXISTS pyfi_read ON {}").format(t),
                       sql.SQL("CREATE POLICY pyfi_read ON {} FOR SELECT USING {}").format(t, readable)]
        if table in WORKERS_READ:
            statements.append(sql.SQL("CREATE POLICY pyfi_worker_read ON {} FOR SELECT TO pyfi_workers USING (true)")
                              .format(t))
    return statements


def upgrade() -> None:
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
    if bind.dialect.name != "postgresql":
        return
    from psycopg2 import sql

    with bind.connection.dbapi_connection.cursor() as cursor:
        for table in (*OBJECTS, *OWN_ROWS):
            t = sql.Identifier(table)
            cursor.execute(sql.SQL("DROP POLICY IF EXISTS pyfi_read ON {}").format(t))
            cursor.execute(sql.SQL("DROP POLICY IF EXISTS pyfi_worker_read ON {}").format(t))
            cursor.execute(sql.SQL("CREATE POLICY pyfi_read ON {} FOR SELECT USING (true)").format(t))
        cursor.execute("DROP FUNCTION IF EXISTS pyfi_has_any_right()")
