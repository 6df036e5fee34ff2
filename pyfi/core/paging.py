"""Listings one page at a time, fast at any depth.

- A page in the second half of a listing is read from its end (the other
  order), so the last page costs what the first does; a page deeper than
  :data:`DEEP` rows is found by the key of its first row (skipping rows
  on the (time, id) index alone), then read by key.
- ``after``: the rows that follow a given row in the listing's order (by
  key: its time and id), with no OFFSET at all; a page's ``next`` names the
  row to continue after.
- The total is exact up to :data:`EXACT_UP_TO` rows. Above that, on
  PostgreSQL, it is the planner's estimate (``Page.exact`` is False and the
  CLI says "about"), since counting a million rows costs more than the page.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from pyfi.errors import InvalidInput, NotFound

#: the most rows a listing counts exactly (PostgreSQL; SQLite always counts)
EXACT_UP_TO = 100_000
#: from this position on, a page is found by the key of its first row (read from the index alone)
DEEP = 1_000


@dataclass(frozen=True)
class Page:
    """One page of a listing and where it sits in the whole."""

    rows: list[Any]
    number: int
    size: int
    total: int
    exact: bool = True  # False: ``total`` is the database's estimate
    next: str | None = None  # the id of the last row, to continue after (None when the listing ends here)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))  # ceiling division


def paged(session: Session, query: Any, order_col: Any, page: int, rows: int, ascend: bool,
          after: str | None = None) -> Page:
    """Run ``query`` one page at a time (the page number must exist), or the page after row ``after``."""
    _check(page, rows)
    total, exact = count(session, query)
    if after is None and exact and page > max(1, -(-total // rows)):
        raise NotFound(f"page {page} does not exist: there are {max(1, -(-total // rows))} pages of {rows} rows",
                           f"pass -p 1 to {max(1, -(-total // rows))}")
    keys = (order_col, order_col.class_.id)  # rows written in one batch share a timestamp: page them stably
    if after is not None:
        found = _after(session, query, keys, after, rows, ascend)
    else:
        found = _numbered(session, query, keys, page, rows, ascend, total)
    more = len(found) == rows and (after is not None or page * rows < total)
    return Page(found, page, rows, total, exact, found[-1].id if found and more else None)


def count(session: Session, query: Any) -> tuple[int, bool]:
    """The number of rows ``query`` yields, and whether it is exact (see the module docstring)."""
    if session.get_bind().dialect.name == "postgresql":
        estimate = _estimate(session, query)
        if estimate > EXACT_UP_TO:
            return estimate, False
    return session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0, True


def _check(page: int, rows: int) -> None:
    if rows < 1:
        raise InvalidInput(f"--rows must be at least 1, got {rows}", "pass -r/--rows 10, for example")
    if page < 1:
        raise InvalidInput(f"--page must be at least 1, got {page}", "pages are numbered from 1")


def _numbered(session: Session, query: Any, keys: tuple, page: int, rows: int, ascend: bool, total: int) -> list:
    start = (page - 1) * rows
    if start >= total / 2 and total > rows:  # from the other end: positions start..end, read backwards
        end = min(start + rows, total)
        return list(reversed(_from(session, query, keys, total - end, end - start, not ascend)))
    return _from(session, query, keys, start, rows, ascend)


def _from(session: Session, query: Any, keys: tuple, offset: int, rows: int, ascend: bool) -> list:
    """``rows`` rows from position ``offset``: a deep one is found by its key alone, then the rows by key."""
    if offset < DEEP:
        return list(session.scalars(query.order_by(*_order(keys, ascend)).offset(offset).limit(rows)))
    first = session.execute(query.with_only_columns(*keys).order_by(*_order(keys, ascend)).offset(offset).limit(1)).first()
    if first is None:
        return []
    return list(session.scalars(query.where(_beyond(keys, tuple(first), ascend, inclusive=True))
                                .order_by(*_order(keys, ascend)).limit(rows)))


def _after(session: Session, query: Any, keys: tuple, after: str, rows: int, ascend: bool) -> list:
    order_col, id_col = keys
    last = session.execute(select(order_col).where(id_col == after)).first()
    if last is None:
        raise NotFound(f"no row with id {after!r} to list after", "pass the id a page's next names")
    beyond = _beyond(keys, (last[0], after), ascend, inclusive=False)
    return list(session.scalars(query.where(beyond).order_by(*_order(keys, ascend)).limit(rows)))


def _beyond(keys: tuple, key: tuple, ascend: bool, inclusive: bool) -> Any:
    """The rows at or past ``key`` in the listing's order: one range on the (time, id) index."""
    mine, theirs = tuple_(*keys), tuple_(*key)
    if ascend:
        return mine >= theirs if inclusive else mine > theirs
    return mine <= theirs if inclusive else mine < theirs


def _order(keys: tuple, ascend: bool) -> tuple:
    return tuple(key.asc() if ascend else key.desc() for key in keys)


def _estimate(session: Session, query: Any) -> int:
    """The planner's estimate of the rows ``query`` yields (PostgreSQL's EXPLAIN)."""
    compiled = query.order_by(None).compile(dialect=session.get_bind().dialect)
    connection = session.connection()
    plan = connection.exec_driver_sql("EXPLAIN (FORMAT JSON) " + str(compiled), compiled.params).scalar()
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return int(plan[0]["Plan"]["Plan Rows"])
