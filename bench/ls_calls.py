"""Benchmark (not a test): the SQL time of ``ls calls`` pages on a million calls, PostgreSQL and SQLite.

Fills a new database with ``--calls`` call rows (a tenth of them failed,
runs of ten sharing a time, as a recorder's batches do), vacuums and
analyzes it (as autovacuum would), then
times each listing through ``pyfi.core.calls.list_calls`` (what ``pyfi ls
calls`` runs: count or estimate, then the page), best of ``--repeat``:

- the first page, newest first; the last page; a page in the middle;
- the page after a call deep in the listing (``--after``);
- the first page of failed calls (a filter).

    python bench/ls_calls.py [--calls 1000000] [--repeat 5] [--db postgres|sqlite]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import USER, fresh_postgres, init_database  # noqa: E402

FILL_POSTGRES = """
INSERT INTO calls (id, name, owner, state, created, lastupdated)
SELECT md5(i::text), 'sample.do_something', 'bench', CASE WHEN i % 10 = 0 THEN 'failed' ELSE 'finished' END,
       timestamp '2026-01-01' + (i / 10) * interval '1 millisecond',
       timestamp '2026-01-01' + (i / 10) * interval '1 millisecond'
FROM generate_series(1, :n) AS i
"""
FILL_SQLITE = """
WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < :n)
INSERT INTO calls (id, name, owner, state, created, lastupdated)
SELECT printf('%032x', i), 'sample.do_something', 'bench', CASE WHEN i % 10 = 0 THEN 'failed' ELSE 'finished' END,
       datetime('2026-01-01', '+' || (i / 10) || ' seconds'), datetime('2026-01-01', '+' || (i / 10) || ' seconds')
FROM seq
"""


def fill(url: str, calls: int) -> None:
    from sqlalchemy import text

    from pyfi.db.engine import get_engine, session_scope

    with session_scope(url) as session:
        postgres = session.get_bind().dialect.name == "postgresql"
        session.execute(text(FILL_POSTGRES if postgres else FILL_SQLITE), {"n": calls})
    with get_engine(url).connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE calls" if postgres else "ANALYZE"))  # what autovacuum does to a grown table


def best(action: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        action()
        times.append(time.perf_counter() - began)
    return min(times)


def measure(url: str, repeat: int) -> dict[str, float]:
    from pyfi.core.access import Actor
    from pyfi.core.calls import CallFilter, list_calls
    from pyfi.db.engine import session_scope

    actor = Actor(USER)

    def listing(**kwargs) -> Callable[[], object]:
        def run() -> object:
            with session_scope(url) as session:
                return list_calls(session, actor, **kwargs)
        return run

    with session_scope(url) as session:
        first = list_calls(session, actor)
        deep = list_calls(session, actor, page=max(first.pages // 2, 1)).rows[-1].id
    return {
        "first page": best(listing(), repeat),
        "middle page": best(listing(page=max(first.pages // 2, 1)), repeat),
        "last page": best(listing(page=first.pages), repeat),
        "after a call in the middle": best(listing(after=deep), repeat),
        "failed calls, first page": best(listing(where=CallFilter(state="failed")), repeat),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    args = parser.parse_args()
    if args.db == "postgres":
        with fresh_postgres() as url:
            run(url, args)
    else:
        with tempfile.TemporaryDirectory() as home:
            run(f"sqlite:///{home}/pyfi.db", args)


def run(url: str, args: argparse.Namespace) -> None:
    init_database(url)
    began = time.perf_counter()
    fill(url, args.calls)
    print(f"{args.calls} calls written in {time.perf_counter() - began:.1f} s")
    for what, seconds in measure(url, args.repeat).items():
        print(f"  {what:28} {seconds * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
