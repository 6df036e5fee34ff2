"""rights on every table: raw SQL over a pyfi user's own login can do no more than the CLI lets them do

PostgreSQL only (SQLite is single-user). Over migration 0004:

- The acting user is the authenticated login, ``session_user``: every
  policy and ``pyfi_has_right`` use it, so a ``SET ROLE`` (or a connection
  option ``-c role=...``) changes nothing about whose rights apply.
- Row-level security on every table. Owned object tables (queues,
  processors, sockets, plugs, nodes, agents, workers, schedulers,
  deployments, networks) follow core's rule: adding needs the kind's ADD
  right and ``owner = session_user``; changing one's own row needs one of
  the kind's rights that change it, another's needs UPDATE; deleting needs
  the kind's DELETE right, and DELETE for another's. A socket is bound only
  to a processor of one's own, a plug only taps a socket of one's own (or
  UPDATE). A trigger keeps ``owner`` as it is and, on processors, lets the
  proc rights change only ``requested_status`` (to what each allows) and
  keeps ``status``/``error`` for agents (the database owner) and ALL.
- History (calls, events, call_parents, join_arrivals) is read-only for
  users and readable only with READ, as ``ls calls`` is; tasks can only be
  added (with ADD_SOCKET or UPDATE_SOCKET), never changed.
- Names hold no control, invisible or line-separator character
  (``pyfi.core.names``), a task is a public function name: CHECK
  constraints (left NOT VALID, for new rows only, when a row written
  before breaks one).
- Only the database's own pyfi users may connect to it: CONNECT is taken
  from PUBLIC and given to each user's role (pyfi.core.pg_roles does so
  for users added later), so a pyfi user of another database on the same
  server cannot even read this one.

The table owner (the login that runs the migrations: agents and
administration) bypasses row-level security, as PostgreSQL does for owners.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""
import importlib

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

GROUP = "pyfi_users"
POLICIES = ("pyfi_read", "pyfi_add", "pyfi_change", "pyfi_remove")
#: owned table -> (add right, rights that change one's own row, delete right)
OWNED = {
    "queues": ("ADD_QUEUE", ("UPDATE_QUEUE",), "DELETE_QUEUE"),
    "processors": ("ADD_PROCESSOR", ("UPDATE_PROCESSOR", "START_PROCESSOR", "STOP_PROCESSOR", "PAUSE_PROCESSOR",
                                     "RESUME_PROCESSOR", "DELETE_PROCESSOR"), "DELETE_PROCESSOR"),
    "sockets": ("ADD_SOCKET", ("UPDATE_SOCKET",), "DELETE_SOCKET"),
    "plugs": ("ADD_PLUG", ("UPDATE_PLUG",), "DELETE_PLUG"),
    "nodes": ("ADD_NODE", ("UPDATE_NODE",), "DELETE_NODE"),
    "agents": ("ADD_AGENT", ("UPDATE_AGENT",), "DELETE_AGENT"),
    "schedulers": ("ADD_SCHEDULER", ("UPDATE_SCHEDULER",), "DELETE_SCHEDULER"),
    "workers": ("CREATE", ("UPDATE",), "DELETE"),
    "deployments": ("CREATE", ("UPDATE",), "DELETE"),
    "networks": ("CREATE", ("UPDATE",), "DELETE"),
}
#: what a new row must also satisfy: the related objects are the user's own (or they hold UPDATE)
BINDING = {
    "sockets": "EXISTS (SELECT 1 FROM processors p WHERE p.id = processor_id AND p.owner = session_user)",
    "plugs": "EXISTS (SELECT 1 FROM sockets s WHERE s.id = source_id AND s.owner = session_user)",
}
#: link table -> (owning table, its key column, right that changes one's own)
LINKS = {"scheduler_nodes": ("schedulers", "scheduler_id", "UPDATE_SCHEDULER"),
         "network_nodes": ("networks", "network_id", "UPDATE")}
#: access table -> (insert right, update right, delete rights), as in 0004
ACCESS = {
    "users": ("ADD_USER", "UPDATE_USER", ("DELETE_USER",)),
    "roles": ("ADD_ROLE", "UPDATE_ROLE", ("DELETE_ROLE",)),
    "privileges": ("ADD_PRIVILEGE", "UPDATE_PRIVILEGE", ("DELETE_PRIVILEGE",)),
    "user_roles": ("UPDATE_USER", "UPDATE_USER", ("UPDATE_USER", "DELETE_USER", "DELETE_ROLE")),
}
HISTORY = ("calls", "events", "call_parents", "join_arrivals")
NAMED = (*OWNED, "users", "roles")
FUNCTION_RE = "^[A-Za-z][A-Za-z0-9_]*$"
MODULE_RE = "^[A-Za-z_][A-Za-z0-9_]*([.][A-Za-z_][A-Za-z0-9_]*)*$"
#: Unicode code point ranges of categories Cc, Cf, Zl and Zp (pyfi.core.names.forbidden_ranges(), frozen here)
FORBIDDEN = ((0x1, 0x1F), (0x7F, 0x9F), (0xAD, 0xAD), (0x600, 0x605), (0x61C, 0x61C), (0x6DD, 0x6DD),
             (0x70F, 0x70F), (0x890, 0x891), (0x8E2, 0x8E2), (0x180E, 0x180E), (0x200B, 0x200F), (0x2028, 0x202E),
             (0x2060, 0x2064), (0x2066, 0x206F), (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB), (0x110BD, 0x110BD),
             (0x110CD, 0x110CD), (0x13430, 0x1343F), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0001, 0xE0001),
             (0xE0020, 0xE007F))

HAS_RIGHT = """
CREATE OR REPLACE FUNCTION {schema}.pyfi_has_right(wanted text) RETURNS boolean
LANGUAGE sql STABLE SET search_path = {schema}, pg_temp AS $body$
  SELECT EXISTS (
    SELECT 1 FROM privileges p JOIN users u ON u.id = p.user_id
     WHERE u.name = session_user AND p."right" IN (wanted, 'ALL'))
  OR EXISTS (
    SELECT 1 FROM privileges p JOIN user_roles ur ON ur.role_id = p.role_id JOIN users u ON u.id = ur.user_id
     WHERE u.name = session_user AND p."right" IN (wanted, 'ALL'))
$body$
"""

IS_ADMIN = """
CREATE OR REPLACE FUNCTION {schema}.pyfi_is_admin() RETURNS boolean
LANGUAGE sql STABLE SET search_path = {schema}, pg_temp AS $body$
  SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = session_user AND rolsuper)
      OR pg_has_role(session_user, (SELECT c.relowner FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                                     WHERE n.nspname = {schema_literal} AND c.relname = 'processors'), 'MEMBER')
$body$
"""

GUARD_OWNER = """
CREATE OR REPLACE FUNCTION {schema}.pyfi_guard_owner() RETURNS trigger
LANGUAGE plpgsql SET search_path = {schema}, pg_temp AS $body$
BEGIN
  IF NEW.owner IS DISTINCT FROM OLD.owner AND NOT pyfi_is_admin() THEN
    RAISE EXCEPTION 'the owner of a row of % never changes', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END
$body$
"""

GUARD_PROCESSOR = """
CREATE OR REPLACE FUNCTION {schema}.pyfi_guard_processor() RETURNS trigger
LANGUAGE plpgsql SET search_path = {schema}, pg_temp AS $body$
BEGIN
  IF pyfi_is_admin() OR pyfi_has_right('ALL') THEN
    RETURN NEW;
  END IF;
  IF (NEW.status, NEW.error) IS DISTINCT FROM (OLD.status, OLD.error) THEN
    RAISE EXCEPTION 'only agents write a processor''s status' USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF pyfi_has_right('UPDATE_PROCESSOR') THEN  -- (row-level security: and it is theirs, or they hold UPDATE)
    RETURN NEW;
  END IF;
  IF (to_jsonb(NEW) - 'requested_status' - 'restart_requested' - 'lastupdated')
     IS DISTINCT FROM (to_jsonb(OLD) - 'requested_status' - 'restart_requested' - 'lastupdated') THEN
    RAISE EXCEPTION 'changing a processor needs the right UPDATE_PROCESSOR' USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF NEW.restart_requested IS DISTINCT FROM OLD.restart_requested AND NOT pyfi_has_right('START_PROCESSOR') THEN
    RAISE EXCEPTION 'restarting a processor needs the right START_PROCESSOR' USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF NEW.requested_status IS DISTINCT FROM OLD.requested_status AND NOT (CASE NEW.requested_status
       WHEN 'running' THEN pyfi_has_right('START_PROCESSOR') OR pyfi_has_right('RESUME_PROCESSOR')
       WHEN 'stopped' THEN pyfi_has_right('STOP_PROCESSOR')
       WHEN 'paused' THEN pyfi_has_right('PAUSE_PROCESSOR')
       WHEN 'removed' THEN pyfi_has_right('DELETE_PROCESSOR')
       ELSE false END) THEN
    RAISE EXCEPTION 'requesting % needs its proc right', NEW.requested_status USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END
$body$
"""

FUNCTIONS = ("pyfi_guard_processor()", "pyfi_guard_owner()", "pyfi_is_admin()")


def forbidden_class() -> str:
    """A PostgreSQL regular expression bracket of the characters no name may hold."""
    def char(point: int) -> str:
        return f"\\U{point:08X}" if point > 0xFFFF else f"\\u{point:04X}"

    return "[" + "".join(char(a) if a == b else f"{char(a)}-{char(b)}" for a, b in FORBIDDEN) + "]"


def _runner(bind):
    raw = bind.connection.dbapi_connection

    def run(statement) -> None:
        with raw.cursor() as cursor:
            cursor.execute(statement)

    return run


def _has(sql, right: str):
    return sql.SQL("pyfi_has_right({})").format(sql.Literal(right))


def _any(sql, rights) -> object:
    return sql.SQL("({})").format(sql.SQL(" OR ").join(_has(sql, r) for r in rights))


def _owned_policies(sql, table: str) -> list:
    add, change, remove = OWNED[table]
    t, mine = sql.Identifier(table), sql.SQL("owner = session_user")
    binding = sql.SQL("({} OR {})").format(sql.SQL(BINDING[table]), _has(sql, "UPDATE")) if table in BINDING else sql.SQL("true")
    may_change = sql.SQL("(({} AND {}) OR {})").format(mine, _any(sql, change), _has(sql, "UPDATE"))
    return [
        sql.SQL("CREATE POLICY pyfi_read ON {} FOR SELECT USING (true)").format(t),
        sql.SQL("CREATE POLICY pyfi_add ON {} FOR INSERT WITH CHECK ({} AND {} AND {})").format(
            t, mine, _has(sql, add), binding),
        sql.SQL("CREATE POLICY pyfi_change ON {} FOR UPDATE USING {} WITH CHECK ({} AND {})").format(
            t, may_change, may_change, binding),
        sql.SQL("CREATE POLICY pyfi_remove ON {} FOR DELETE USING ({} AND ({} OR {}))").format(
            t, _has(sql, remove), mine, _has(sql, "DELETE")),
        sql.SQL("CREATE TRIGGER pyfi_guard_owner BEFORE UPDATE ON {} FOR EACH ROW EXECUTE FUNCTION pyfi_guard_owner()")
        .format(t),
    ]


def _link_policies(sql, table: str) -> list:
    owner_table, key, change = LINKS[table]
    allowed = sql.SQL("EXISTS (SELECT 1 FROM {} o WHERE o.id = {} AND ((o.owner = session_user AND {}) OR {}))").format(
        sql.Identifier(owner_table), sql.Identifier(key), _has(sql, change), _has(sql, "UPDATE"))
    t = sql.Identifier(table)
    return [
        sql.SQL("CREATE POLICY pyfi_read ON {} FOR SELECT USING (true)").format(t),
        sql.SQL("CREATE POLICY pyfi_add ON {} FOR INSERT WITH CHECK ({})").format(t, allowed),
        sql.SQL("CREATE POLICY pyfi_remove ON {} FOR DELETE USING ({})").format(t, allowed),
    ]


def _access_policies(sql, table: str) -> list:
    add, change, remove = ACCESS[table]
    t = sql.Identifier(table)
    return [
        sql.SQL("CREATE POLICY pyfi_read ON {} FOR SELECT USING (true)").format(t),
        sql.SQL("CREATE POLICY pyfi_add ON {} FOR INSERT WITH CHECK ({})").format(t, _has(sql, add)),
        sql.SQL("CREATE POLICY pyfi_change ON {} FOR UPDATE USING ({})").format(t, _has(sql, change)),
        sql.SQL("CREATE POLICY pyfi_remove ON {} FOR DELETE USING ({})").format(t, _any(sql, remove)),
    ]


def _history_policies(sql, table: str) -> list:
    return [sql.SQL("CREATE POLICY pyfi_read ON {} FOR SELECT USING ({})").format(sql.Identifier(table),
                                                                                   _has(sql, "READ"))]


def _task_policies(sql) -> list:
    return [
        sql.SQL("CREATE POLICY pyfi_read ON tasks FOR SELECT USING (true)"),
        sql.SQL("CREATE POLICY pyfi_add ON tasks FOR INSERT WITH CHECK ({})").format(
            _any(sql, ("ADD_SOCKET", "UPDATE_SOCKET"))),
        sql.SQL("CREATE POLICY pyfi_read ON arguments FOR SELECT USING (true)"),
    ]


def _grants(sql) -> list:
    group = sql.Identifier(GROUP)
    ids = lambda names: sql.SQL(", ").join(map(sql.Identifier, names))  # noqa: E731
    return [
        sql.SQL("REVOKE INSERT, UPDATE, DELETE ON {} FROM {}").format(ids((*HISTORY, "arguments", "tasks")), group),
        sql.SQL("GRANT INSERT ON tasks TO {}").format(group),
    ]


def _checks(sql) -> list:
    bad = sql.Literal(forbidden_class())
    statements = [sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} CHECK (name !~ {}) NOT VALID").format(
        sql.Identifier(t), sql.Identifier(f"ck_{t}_printable_name"), bad) for t in NAMED]
    statements.append(sql.SQL("ALTER TABLE tasks ADD CONSTRAINT ck_tasks_public_function CHECK (name ~ {}) NOT VALID")
                      .format(sql.Literal(FUNCTION_RE)))
    statements.append(sql.SQL("ALTER TABLE tasks ADD CONSTRAINT ck_tasks_module_path CHECK (module ~ {}) NOT VALID")
                      .format(sql.Literal(MODULE_RE)))
    return statements


def _connect_only_for_users(sql, bind) -> list:
    database = sql.Identifier(bind.execute(sa.text("SELECT current_database()")).scalar_one())
    roles = bind.execute(sa.text(
        "SELECT u.name FROM users u JOIN pg_roles r ON r.rolname = u.name JOIN pg_auth_members m ON m.member = r.oid"
        " JOIN pg_roles g ON g.oid = m.roleid WHERE g.rolname = :group"), {"group": GROUP}).scalars().all()
    statements = [sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC").format(database)]
    statements += [sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(database, sql.Identifier(r)) for r in roles]
    return statements


def _drop_policies(sql, run, tables) -> None:
    for table in tables:
        for policy in POLICIES:
            run(sql.SQL("DROP POLICY IF EXISTS {} ON {}").format(sql.Identifier(policy), sql.Identifier(table)))


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    from psycopg2 import sql

    schema_name = bind.execute(sa.text("SELECT current_schema()")).scalar_one()
    schema = sql.Identifier(schema_name)
    run = _runner(bind)
    for text in (HAS_RIGHT, IS_ADMIN, GUARD_OWNER, GUARD_PROCESSOR):
        run(sql.SQL(text).format(schema=schema, schema_literal=sql.Literal(schema_name)))
    run(sql.SQL("REVOKE CREATE ON SCHEMA {} FROM PUBLIC").format(schema))
    _drop_policies(sql, run, ("queues", "processors", "sockets", "plugs", *ACCESS))
    statements = [statement for table in OWNED for statement in _owned_policies(sql, table)]
    statements += [statement for table in LINKS for statement in _link_policies(sql, table)]
    statements += [statement for table in ACCESS for statement in _access_policies(sql, table)]
    statements += [statement for table in HISTORY for statement in _history_policies(sql, table)]
    statements += _task_policies(sql) + _grants(sql) + _checks(sql) + _connect_only_for_users(sql, bind)
    statements.append(sql.SQL("CREATE TRIGGER pyfi_guard_processor BEFORE UPDATE ON processors FOR EACH ROW "
                              "EXECUTE FUNCTION pyfi_guard_processor()"))
    for table in (*OWNED, *LINKS, *HISTORY, "tasks", "arguments"):
        run(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(sql.Identifier(table)))
    for statement in statements:
        run(statement)
    for table, constraint in _constraints():
        _validate(sql, run, table, constraint)


def _constraints() -> list[tuple[str, str]]:
    return [(t, f"ck_{t}_printable_name") for t in NAMED] + [("tasks", "ck_tasks_public_function"),
                                                            ("tasks", "ck_tasks_module_path")]


def _validate(sql, run, table: str, constraint: str) -> None:
    """Hold the rows written before to the rule too, unless one breaks it (then it stays for new rows only)."""
    run(sql.SQL("SAVEPOINT pyfi_validate"))
    try:
        run(sql.SQL("ALTER TABLE {} VALIDATE CONSTRAINT {}").format(sql.Identifier(table), sql.Identifier(constraint)))
    except Exception:  # noqa: BLE001 - a legacy row breaks it: keep the check for new rows
        run(sql.SQL("ROLLBACK TO SAVEPOINT pyfi_validate"))
    else:
        run(sql.SQL("RELEASE SAVEPOINT pyfi_validate"))


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    from psycopg2 import sql

    run = _runner(bind)
    database = sql.Identifier(bind.execute(sa.text("SELECT current_database()")).scalar_one())
    run(sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO PUBLIC").format(database))
    every = (*OWNED, *LINKS, *ACCESS, *HISTORY, "tasks", "arguments")
    _drop_policies(sql, run, every)
    for table in every:
        run(sql.SQL("ALTER TABLE {} DISABLE ROW LEVEL SECURITY").format(sql.Identifier(table)))
    for table in OWNED:
        run(sql.SQL("DROP TRIGGER IF EXISTS pyfi_guard_owner ON {}").format(sql.Identifier(table)))
    run(sql.SQL("DROP TRIGGER IF EXISTS pyfi_guard_processor ON processors"))
    for table, constraint in _constraints():
        run(sql.SQL("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}").format(sql.Identifier(table),
                                                                          sql.Identifier(constraint)))
    for function in FUNCTIONS:
        run(sql.SQL(f"DROP FUNCTION IF EXISTS {function}"))
    group = sql.Identifier(GROUP)
    run(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON {} TO {}").format(
        sql.SQL(", ").join(map(sql.Identifier, (*HISTORY, "arguments", "tasks"))), group))
    previous = importlib.import_module("pyfi.migrations.versions.0004_access_control")
    _drop_policies(sql, run, ("queues", "processors", "sockets", "plugs", *ACCESS))
    schema = bind.execute(sa.text("SELECT current_schema()")).scalar_one()
    run(sql.SQL(previous.HAS_RIGHT).format(schema=sql.Identifier(schema)))
    for table, kind in previous.OWNED.items():
        run(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(sql.Identifier(table)))
        for statement in previous._owned_policies(sql, table, kind):
            run(statement)
    for table, (add, change, remove) in previous.ACCESS.items():
        run(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(sql.Identifier(table)))
        for statement in previous._access_policies(sql, table, add, change, remove):
            run(statement)
