"""Run one INSERT statement over many rows through the DBAPI, fast.

The recorder writes three records per call. SQLAlchemy's executemany
spends tens of microseconds of Python per row (parameter processing; on
psycopg2 it needs RETURNING, and its rows, to send a batch as one multi-row
VALUES), and psycopg2's ``execute_values`` still formats every row in a
Python loop. So a batch goes to the driver whole:

- PostgreSQL: one ``INSERT INTO t (cols) SELECT cols FROM json_populate_recordset(NULL::t, %(rows)s)``
  with the rows as one JSON text. (An earlier version sent one array per
  column; psycopg2 adapts every element of an array on its own, and that
  was the largest cost of the sidecar, ~30% of its CPU. The server parses
  JSON about as fast as arrays.) The text comes from orjson, which writes
  datetimes itself: the stdlib encoder calls back into Python for each
  one and took ~14 us per call row, orjson ~1.
- SQLite: ``executemany`` of the compiled statement.

The SQL is SQLAlchemy's own compilation of the statement (its ON CONFLICT
clause included), and values go through the columns' bind processors, so
what is written is what SQLAlchemy would write. DBAPI errors are re-raised
as SQLAlchemy's (IntegrityError...), and a dropped connection is
invalidated as SQLAlchemy would.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import insert
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.dml import Insert

from pyfi.db.base import EnumText
from pyfi.errors import ConfigError


@dataclass(frozen=True)
class Bulk:
    """One statement, compiled once for a dialect, run over whole batches."""

    sql: str
    constants: dict[str, Any]  # literal parameters of the conflict clause (SQLite passes them per row)
    processors: tuple[tuple[str, Callable[[Any], Any]], ...]
    as_json: bool  # True: the rows as one JSON parameter (PostgreSQL); False: executemany (SQLite)

    def execute(self, conn: Any, rows: list[dict]) -> None:
        """Write ``rows`` (dicts holding every column) on the SQLAlchemy connection ``conn``."""
        if not rows:
            return
        for row in rows:
            for key, process in self.processors:
                row[key] = process(row[key])
        dbapi = conn.dialect.loaded_dbapi
        cursor = conn.connection.cursor()
        try:
            if self.as_json:
                cursor.execute(self.sql, {"rows": encode_rows(rows)})
            else:
                try:
                    cursor.executemany(self.sql, [{**row, **self.constants} for row in rows])
                except UnicodeEncodeError:  # a lone surrogate: sqlite3 cannot bind it
                    cursor.executemany(self.sql, [{**row, **self.constants} for row in cleaned(rows)])
        except dbapi.Error as exc:
            if conn.dialect.is_disconnect(exc, conn.connection.dbapi_connection, cursor):
                conn.invalidate(exc)
            raise DBAPIError.instance(self.sql, None, exc, dbapi.Error, dialect=conn.dialect) from exc
        finally:
            cursor.close()


def compile_bulk(stmt: Insert, table: Any, dialect: Any) -> Bulk:
    """``stmt`` (an INSERT into ``table``, maybe with ON CONFLICT) as a :class:`Bulk` for ``dialect``."""
    processors = _processors(table, dialect)
    if dialect.name == "sqlite":
        compiled = stmt.compile(dialect=sqlite.dialect(paramstyle="named"))
        constants = {k: v for k, v in compiled.params.items() if k not in table.c}
        return Bulk(compiled.string, constants, processors, as_json=False)
    compiled = stmt.compile(dialect=dialect)
    plain = insert(table).compile(dialect=dialect).string  # INSERT INTO t (cols) VALUES (row template)
    head, _, template = plain.partition(" VALUES ")
    if not compiled.string.startswith(plain) or not template.startswith("("):
        raise ConfigError(f"cannot prepare the recorder's bulk SQL for {dialect.name}")
    constants = {k: v for k, v in compiled.params.items() if k not in table.c}
    clause = compiled.string[len(plain):]  # ON CONFLICT ...: its constants are quoted in place
    clause = clause % {k: _quoted(v) for k, v in constants.items()}
    preparer = dialect.identifier_preparer
    columns = ", ".join(preparer.format_column(column) for column in table.columns)
    source = f"json_populate_recordset(NULL::{preparer.format_table(table)}, %(rows)s)"
    sql = f"{head} SELECT {columns} FROM {source}{clause.replace('%', '%%')}"
    return Bulk(sql, {}, processors, as_json=True)


def encode_rows(rows: list[dict]) -> str:
    """The rows as one JSON text; datetimes as ISO text, which PostgreSQL reads back exactly."""
    try:
        text = orjson.dumps(rows).decode()
    except orjson.JSONEncodeError:  # a lone surrogate (text decoded with surrogateescape, say)
        return orjson.dumps(cleaned(rows)).decode()
    if "\\u0000" in text:  # a NUL, which PostgreSQL's text cannot hold (or text that looks like one)
        return orjson.dumps(cleaned(rows)).decode()
    return text


def cleaned(rows: list[dict]) -> list[dict]:
    """The rows with text the database could not take made storable, so that no record is lost for it.

    A NUL becomes the four characters ``\\x00`` and a lone surrogate its
    ``\\udcxx`` escape, as text; everything else is left as it was.
    """
    return [{key: _storable(value) if isinstance(value, str) else value for key, value in row.items()} for row in rows]


def _storable(text: str) -> str:
    text = text.replace("\x00", "\\x00")
    if text.isascii():
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _quoted(value: Any) -> str:
    """A constant of the merge clause (a rank or a state name, never input) quoted by psycopg2's adapter."""
    from psycopg2.extensions import adapt

    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ConfigError(f"unexpected constant {value!r} in the recorder's SQL")
    return adapt(value).getquoted().decode()


def _processors(table: Any, dialect: Any) -> tuple[tuple[str, Callable[[Any], Any]], ...]:
    """The columns whose values SQLAlchemy converts before binding (enums, SQLite datetimes)."""
    found = []
    for column in table.columns:
        process = column.type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None and dialect.name != "sqlite" and isinstance(column.type, EnumText):
            process = _enum_member(column.type.enum_cls, process)
        if process is not None:
            found.append((column.name, process))
    return tuple(found)


def _enum_member(enum_cls: type, process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """EnumText's check, skipped for what is already a member (orjson writes a member as its value)."""
    def member(value: Any) -> Any:
        return value if value.__class__ is enum_cls else process(value)
    return member
