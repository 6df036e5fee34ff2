"""Benchmark (not a test): records/s the call recorder sustains into SQLite and PostgreSQL.

Each call is three records (received, started, finished), enqueued as fast
as one thread can, while the writer thread flushes them in batches. The
figure to compare with is bare Celery's ~600 calls/s (1,800 records/s) on
a 2-core machine: the recorder must be far above it.

    python bench/recorder_bench.py [--calls 20000] [--pg-admin URL | --no-pg]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid

from sqlalchemy import create_engine, func, select, text

from pyfi.db import migrate
from pyfi.db.engine import dispose_all, session_scope
from pyfi.db.models import Call, Event
from pyfi.enums import CallState
from pyfi.worker.recorder import Recorder

NAME = "pyfi.processors.sample.do_something"
DEFAULT_PG_ADMIN = os.environ.get("PYFI_TEST_PG", "postgresql+psycopg2://postgres@localhost:5432/postgres")


def measure(label: str, url: str, calls: int) -> None:
    """Record ``calls`` calls, wait until all are written, check and print the rates."""
    recorder = Recorder(url, owner="bench")
    ids = [str(uuid.uuid4()) for _ in range(calls)]
    began = time.perf_counter()
    for call_id in ids:
        recorder.received(call_id, NAME, None, tracking="bench")
        recorder.started(call_id, name=NAME)
        recorder.finished(call_id, call_id, name=NAME)
    enqueued = time.perf_counter() - began
    if not recorder.flush(timeout=600):
        raise SystemExit(f"{label}: flush timed out")
    elapsed = time.perf_counter() - began
    recorder.stop()
    check(url, calls)
    records = 3 * calls
    print(f"{label:10} {calls:,} calls / {records:,} records in {elapsed:5.2f} s: "
          f"{records / elapsed:9,.0f} records/s = {calls / elapsed:7,.0f} calls/s "
          f"(enqueue {enqueued / records * 1e6:.1f} us/record)")


def check(url: str, calls: int) -> None:
    with session_scope(url) as session:
        finished = session.scalar(select(func.count()).select_from(Call).where(Call.state == CallState.FINISHED))
        events = session.scalar(select(func.count()).select_from(Event))
    if (finished, events) != (calls, 3 * calls):
        raise SystemExit(f"expected {calls} finished calls and {3 * calls} events, found {finished} and {events}")


def bench_sqlite(calls: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        migrate.upgrade(url)
        measure("sqlite", url, calls)
        dispose_all()


def bench_postgres(calls: int, admin_url: str) -> None:
    name = f"pyfi_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))  # generated name, not input
    try:
        url = admin_url.rsplit("/", 1)[0] + "/" + name
        migrate.upgrade(url)
        measure("postgres", url, calls)
    finally:
        dispose_all()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--pg-admin", default=DEFAULT_PG_ADMIN, help="URL of a database allowed to CREATE DATABASE")
    parser.add_argument("--no-pg", action="store_true", help="skip PostgreSQL")
    args = parser.parse_args()
    bench_sqlite(args.calls)
    if not args.no_pg:
        bench_postgres(args.calls, args.pg_admin)


if __name__ == "__main__":
    main()
