"""tighter rows: what raw SQL may write matches what pyfi's commands write (PostgreSQL only)

- Privileges and roles never change once written (no command changes one):
  no pyfi user may update them, so a holder of UPDATE_PRIVILEGE cannot turn
  a privilege into ALL.
- A worker's login records calls of its processor's sockets only, never a
  call without a socket (every record a worker writes names its call's
  socket): whatever a worker records is attributed to one of its sockets.
- Names: the rule of ``pyfi.core.names`` (no control, invisible or blank
  character, no space but U+0020, no surrounding space, not empty; a
  processor's name holds no ``.``), and no control character in a
  processor's module, git repository, branch, host name or requirements.
- A new processor of a user (not an administrator) starts ``ready`` with no
  error: only agents write its status.
- A new user row needs its database role to exist (``add user`` makes it
  with CREATEROLE, over the owner's login), unless an administrator writes it.

New constraints hold new rows; rows written before are checked too, and a
constraint a legacy row breaks stays for new rows only.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""
import importlib

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

rights = importlib.import_module("pyfi.migrations.versions.0008_rights_on_every_table")
logins = importlib.import_module("pyfi.migrations.versions.0010_worker_logins")

#: code point ranges of the characters no name may hold (pyfi.core.names.forbidden_ranges(), frozen here)
FORBIDDEN = ((0x1, 0x1F), (0x7F, 0xA0), (0xAD, 0xAD), (0x34F, 0x34F), (0x600, 0x605), (0x61C, 0x61C),
             (0x6DD, 0x6DD), (0x70F, 0x70F), (0x890, 0x891), (0x8E2, 0x8E2), (0x115F, 0x1160), (0x1680, 0x1680),
             (0x17B4, 0x17B5), (0x180B, 0x180F), (0x2000, 0x200F), (0x2028, 0x202F), (0x205F, 0x2064),
             (0x2066, 0x206F), (0x2800, 0x2800), (0x3000, 0x3000), (0x3164, 0x3164), (0xFE00, 0xFE0F),
             (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFFB), (0x110BD, 0x110BD), (0x110CD, 0x110CD),
             (0x13430, 0x13438), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF))
#: a processor's text columns that must hold no control character
PROCESSOR_TEXT = ("module", "gitrepo", "branch", "hostname", "requirements", "commit")
#: calls a worker's login may see and record: of its processor's sockets
MINE = "(socket_id = ANY (CAST((SELECT pyfi_worker_sockets()) AS text[])))"

GUARD_NEW = """
CREATE OR REPLACE FUNCTION {schema}.pyfi_guard_new_processor() RETURNS trigger
LANGUAGE plpgsql SET search_path = {schema}, pg_temp AS $body$
BEGIN
  IF NOT pyfi_is_admin() AND (NEW.status IS DISTINCT FROM 'ready' OR NEW.error IS NOT NULL) THEN
    RAISE EXCEPTION 'a new processor is ready with no error: only agents write its status'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END
$body$;
CREATE OR REPLACE FUNCTION {schema}.pyfi_guard_new_user() RETURNS trigger
LANGUAGE plpgsql SET search_path = {schema}, pg_temp AS $body$
BEGIN
  IF NOT pyfi_is_admin() AND NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = NEW.name) THEN
    RAISE EXCEPTION 'a user needs a database role: add users over the owner''s login (pyfi add user)'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END
$body$
"""
FUNCTIONS = ("pyfi_guard_new_processor()", "pyfi_guard_new_user()")


def _class(ranges) -> str:
    def char(point: int) -> str:
        return f"\\U{point:08X}" if point > 0xFFFF else f"\\u{point:04X}"

    return "[" + "".join(char(a) if a == b else f"{char(a)}-{char(b)}" for a, b in ranges) + "]"


def _name_rule(sql, table: str):
    rule = sql.SQL("name !~ {} AND char_length(name) BETWEEN 1 AND 200 AND name = btrim(name)").format(
        sql.Literal(_class(FORBIDDEN)))
    return sql.SQL("{} AND position('.' in name) = 0").format(rule) if table == "processors" else rule


def _constraints(sql) -> list[tuple[str, str, object]]:
    """(table, constraint, condition) of every constraint this revision adds."""
    found = [(t, f"ck_{t}_visible_name", _name_rule(sql, t)) for t in rights.NAMED]
    control = sql.Literal(_class(((0x1, 0x1F), (0x7F, 0x9F))))
    found += [("processors", f"ck_processors_{column}_printable",
               sql.SQL("{} !~ {}").format(sql.Identifier(column), control)) for column in PROCESSOR_TEXT]
    return found


def _policies(sql) -> list:
    statements = _worker_calls(sql, sql.SQL(MINE))
    for table in ("privileges", "roles"):
        statements += [sql.SQL("DROP POLICY IF EXISTS pyfi_change ON {}").format(sql.Identifier(table)),
                       sql.SQL("REVOKE UPDATE ON {} FROM pyfi_users").format(sql.Identifier(table))]
    return statements


def _worker_calls(sql, mine) -> list:
    to = sql.SQL("TO {}").format(sql.Identifier(logins.GROUP))
    statements = [sql.SQL("DROP POLICY IF EXISTS {} ON calls").format(sql.Identifier(p))
                  for p in logins.POLICIES["calls"]]
    return statements + [
        sql.SQL("CREATE POLICY pyfi_worker_read ON calls FOR SELECT {} USING {}").format(to, mine),
        sql.SQL("CREATE POLICY pyfi_worker_add ON calls FOR INSERT {} WITH CHECK {}").format(to, mine),
        sql.SQL("CREATE POLICY pyfi_worker_change ON calls FOR UPDATE {} USING {} WITH CHECK {}").format(to, mine, mine),
    ]


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    from psycopg2 import sql

    schema = sql.Identifier(bind.execute(sa.text("SELECT current_schema()")).scalar_one())
    run = rights._runner(bind)
    run(sql.SQL(GUARD_NEW).format(schema=schema))
    for statement in _policies(sql):
        run(statement)
    run(sql.SQL("CREATE TRIGGER pyfi_guard_new_processor BEFORE INSERT ON processors FOR EACH ROW "
                "EXECUTE FUNCTION pyfi_guard_new_processor()"))
    run(sql.SQL("CREATE TRIGGER pyfi_guard_new_user BEFORE INSERT ON users FOR EACH ROW "
                "EXECUTE FUNCTION pyfi_guard_new_user()"))
    for table in rights.NAMED:  # (the names rule of 0008, which this one holds)
        run(sql.SQL("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}").format(
            sql.Identifier(table), sql.Identifier(f"ck_{table}_printable_name")))
    for table, constraint, condition in _constraints(sql):
        run(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} CHECK ({}) NOT VALID").format(
            sql.Identifier(table), sql.Identifier(constraint), condition))
        rights._validate(sql, run, table, constraint)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    from psycopg2 import sql

    run = rights._runner(bind)
    for table, constraint, _ in _constraints(sql):
        run(sql.SQL("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}").format(sql.Identifier(table),
                                                                          sql.Identifier(constraint)))
    for table in rights.NAMED:
        run(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} CHECK (name !~ {}) NOT VALID").format(
            sql.Identifier(table), sql.Identifier(f"ck_{table}_printable_name"), sql.Literal(rights.forbidden_class())))
    run(sql.SQL("DROP TRIGGER IF EXISTS pyfi_guard_new_user ON users"))
    run(sql.SQL("DROP TRIGGER IF EXISTS pyfi_guard_new_processor ON processors"))
    for function in FUNCTIONS:
        run(sql.SQL(f"DROP FUNCTION IF EXISTS {function}"))
    for statement in _worker_calls(sql, sql.SQL(logins.MINE)):
        run(statement)
    for table in ("privileges", "roles"):
        change = rights.ACCESS[table][1]
        run(sql.SQL("GRANT UPDATE ON {} TO pyfi_users").format(sql.Identifier(table)))
        run(sql.SQL("CREATE POLICY pyfi_change ON {} FOR UPDATE USING (pyfi_has_right({}))").format(
            sql.Identifier(table), sql.Literal(change)))
