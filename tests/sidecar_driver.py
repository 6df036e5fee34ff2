"""Run one sidecar scenario in a fresh process (the sidecar forks; pytest's process should not).

    python tests/sidecar_driver.py SCENARIO DB_URL PUBSUB_URL CALLS

Prints one JSON line with what the scenario observed. Scenarios:

- ``children``: two forked processes record CALLS calls each (received, started,
  finished, a published message per call) through one sidecar; one of them
  checks that ``flush()`` means "in the database"; then the sidecar is stopped.
- ``killed_child``: a forked process records CALLS calls and is killed -9 at once.
- ``orphan``: records CALLS calls, then the process dies without stopping its
  sidecar (which must still write them all and exit).
- ``fallback``: the sidecar is killed first; CALLS calls are recorded anyway.
- ``no_sidecar``: the sidecar cannot listen (TMPDIR too long); CALLS calls are recorded anyway.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sys
import uuid

from sqlalchemy import func, select

from pyfi.db.engine import session_scope
from pyfi.db.models import Call
from pyfi.messaging.pubsub import build_message
from pyfi.worker.sidecar import start_sidecar
from pyfi.worker.sink import RecordSink

NAME = "sample.do_something"
CHANNEL = "q.p.task"


def record_calls(sink: RecordSink, prefix: str, count: int) -> list[str]:
    ids = [prefix + str(uuid.uuid4())[len(prefix):] for _ in range(count)]  # call ids are 36 characters
    for call_id in ids:
        with sink.batch():
            sink.received(call_id, NAME, None, tracking=call_id)
            sink.started(call_id, name=NAME)
            sink.publish(CHANNEL, build_message("q.p", "running", call=call_id))
        sink.finished(call_id, f"key-{call_id}", name=NAME)
    return ids


def count_calls(db_url: str, ids: list[str]) -> int:
    with session_scope(db_url) as session:
        return session.scalar(select(func.count()).select_from(Call).where(Call.id.in_(ids)))


def child(sink: RecordSink, db_url: str, prefix: str, count: int, check_flush: bool, out: multiprocessing.Queue) -> None:
    ids = record_calls(sink, prefix, count)
    flushed = sink.flush(20) if check_flush else True
    seen = count_calls(db_url, ids) if check_flush else count
    sink.stop()
    out.put({"checked": check_flush, "flushed": flushed, "seen_after_flush": seen})


def children(db_url: str, pubsub_url: str, count: int) -> dict:
    sidecar = start_sidecar(db_url, pubsub_url, "tester")
    sink = RecordSink(sidecar.address, db_url, pubsub_url, "tester")
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    procs = [context.Process(target=child, args=(sink, db_url, f"c{i}", count, i == 0, out)) for i in range(2)]
    for proc in procs:
        proc.start()
    reports = [out.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(30)
    sink.revoked("parentcall" + str(uuid.uuid4())[10:], name=NAME)  # the main process records too (as the prefork parent does)
    return {"reports": reports, "confirmed": sidecar.stop(), "sidecar_pid": sidecar.pid,
            "socket_left": os.path.exists(sidecar.address)}


def killed_child(db_url: str, pubsub_url: str, count: int) -> dict:
    """A pool process records its calls, then is killed -9 before it could flush anything itself."""
    sidecar = start_sidecar(db_url, pubsub_url, "tester")
    sink = RecordSink(sidecar.address, db_url, pubsub_url, "tester")
    pid = os.fork()
    if pid == 0:
        record_calls(sink, "killed", count)
        os.kill(os.getpid(), signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    return {"killed": os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, "confirmed": sidecar.stop()}


def orphan(db_url: str, pubsub_url: str, count: int) -> None:
    sidecar = start_sidecar(db_url, pubsub_url, "tester")
    sink = RecordSink(sidecar.address, db_url, pubsub_url, "tester")
    record_calls(sink, "orphan", count)
    print(json.dumps({"sidecar_pid": sidecar.pid}), flush=True)
    os._exit(0)  # as if killed: no stop, no exit hooks


def fallback(db_url: str, pubsub_url: str, count: int) -> dict:
    sidecar = start_sidecar(db_url, pubsub_url, "tester")
    os.kill(sidecar.pid, signal.SIGKILL)
    os.waitpid(sidecar.pid, 0)
    sink = RecordSink(sidecar.address, db_url, pubsub_url, "tester")
    ids = record_calls(sink, "fallback", count)
    return {"flushed": sink.flush(20), "seen_after_flush": count_calls(db_url, ids), "stopped": sink.stop(20)}


def no_sidecar(db_url: str, pubsub_url: str, count: int) -> dict:
    """TMPDIR too long for a Unix socket path: no sidecar, and every call is still recorded."""
    import tempfile

    tempfile.tempdir = tempfile.mkdtemp(prefix="x" * 120)
    sidecar = start_sidecar(db_url, pubsub_url, "tester")
    sink = RecordSink(None, db_url, pubsub_url, "tester")
    ids = record_calls(sink, "nosidecar", count)
    return {"sidecar": sidecar is not None, "flushed": sink.flush(20), "seen_after_flush": count_calls(db_url, ids),
            "stopped": sink.stop(20)}


def outage_flush(db_url: str, pubsub_url: str, count: int) -> dict:
    """The database is down: once the sidecar knows it, a flush is answered at once (not after its timeout)."""
    import time

    sidecar = start_sidecar(db_url, pubsub_url, "tester")
    sink = RecordSink(sidecar.address, db_url, pubsub_url, "tester")
    record_calls(sink, "outage", count)
    first = sink.flush(5)  # waits for the first write to fail
    started = time.monotonic()
    second = sink.flush(5)
    took = time.monotonic() - started
    os.kill(sidecar.pid, signal.SIGKILL)
    return {"first": first, "second": second, "took": took}


def main() -> None:
    scenario, db_url, pubsub_url, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    scenarios = {"children": children, "killed_child": killed_child, "orphan": orphan, "fallback": fallback,
                 "no_sidecar": no_sidecar, "outage_flush": outage_flush}
    result = scenarios[scenario](db_url, pubsub_url, count)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
