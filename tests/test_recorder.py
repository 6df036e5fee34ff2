"""The background call/event recorder against real SQLite and PostgreSQL, no mocks.

Every wait polls the database (or the recorder) against a deadline.
"""
from __future__ import annotations

import datetime as dt
import logging
import multiprocessing
import os
import threading
import uuid
from collections import Counter
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import create_engine, event, func, select, text
from sqlalchemy.engine import make_url

from pyfi.db import migrate
from pyfi.db.engine import get_engine, session_scope
from pyfi.db.models import Call, Event, Processor, Queue, Socket, Task
from pyfi.enums import CallState, EventName
from pyfi.testing import wait_for
from pyfi.worker import journal
from pyfi.worker.recorder import Recorder, backoff
from conftest import PG_ADMIN_URL

DEADLINE = 20.0
NAME = "pyfi.processors.sample.do_something"
T0 = dt.datetime(2024, 5, 1, 12, 0, 0)


def calls_by_id(url: str) -> dict[str, Call]:
    with session_scope(url) as session:
        return {c.id: c for c in session.scalars(select(Call))}


def events_of(url: str, call_id: str | None = None) -> list[Event]:
    query = select(Event) if call_id is None else select(Event).where(Event.call_id == call_id)
    with session_scope(url) as session:
        return list(session.scalars(query))


def count_calls(url: str, state: CallState | None = None) -> int:
    query = select(func.count()).select_from(Call)
    if state is not None:
        query = query.where(Call.state == state)
    with session_scope(url) as session:
        return session.scalar(query)


def make_socket(url: str) -> str:
    with session_scope(url) as session:
        queue = Queue(name="queue1")
        processor = Processor(name="proc1", module="pyfi.processors.sample", gitrepo="https://example.org/r.git")
        task = Task(name="do_something", module="pyfi.processors.sample")
        socket = Socket(name="sock1", processor=processor, queue=queue, task=task)
        session.add(socket)
        session.flush()
        return socket.id


def new_id() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def recorder(db_url: str) -> Iterator[Recorder]:
    rec = Recorder(db_url, owner="tester", longest_gather=0.05)
    yield rec
    assert rec.stop(10)


def test_a_thousand_calls_land_finished_with_three_events_each_in_few_transactions(db_url: str) -> None:
    socket_id = make_socket(db_url)
    commits: list[str] = []

    def count_commit(_conn: object) -> None:
        commits.append(threading.current_thread().name)

    event.listen(get_engine(db_url), "commit", count_commit)
    rec = Recorder(db_url, owner="tester", longest_gather=30.0, max_batch=500)  # batches cut by size and flush()
    ids = [new_id() for _ in range(1000)]
    for call_id in ids:
        rec.received(call_id, NAME, socket_id, tracking="flow-1")
        rec.started(call_id, name=NAME)
        rec.finished(call_id, f"result-{call_id}", name=NAME)
    assert rec.flush(DEADLINE) and rec.pending == 0
    assert rec.stop(5)
    event.remove(get_engine(db_url), "commit", count_commit)
    assert commits and set(commits) == {"pyfi-recorder"}
    assert len(commits) <= 8, f"{len(commits)} transactions for 3,000 records: not batched"

    calls = calls_by_id(db_url)
    assert len(calls) == 1000
    assert {c.state for c in calls.values()} == {CallState.FINISHED}
    one = calls[ids[0]]
    assert (one.name, one.socket_id, one.tracking, one.owner) == (NAME, socket_id, "flow-1", "tester")
    assert one.resultkey == f"result-{ids[0]}" and one.started <= one.finished
    events = events_of(db_url)
    assert Counter(e.name for e in events) == {"received": 1000, "prerun": 1000, "postrun": 1000}
    assert {e.note for e in events_of(db_url, ids[0])} == {
        f"Received task {NAME}", f"Prerun for task {NAME}", f"Postrun for task {NAME}"}


@pytest.mark.parametrize("one_batch", [True, False], ids=["one-batch", "separate-batches"])
def test_out_of_order_records_merge_into_a_finished_call(db_url: str, recorder: Recorder, one_batch: bool) -> None:
    socket_id, call_id = make_socket(db_url), new_id()
    steps = [
        lambda: recorder.finished(call_id, "rk-1", T0 + dt.timedelta(seconds=2), name=NAME),
        lambda: recorder.started(call_id, T0 + dt.timedelta(seconds=1), name=NAME),
        lambda: recorder.received(call_id, NAME, socket_id, parent="p-1", tracking="t-1", taskparent="tp-1", when=T0),
    ]
    for step in steps:
        step()
        if not one_batch:
            assert recorder.flush(DEADLINE)
    assert recorder.flush(DEADLINE)

    call = calls_by_id(db_url)[call_id]
    assert call.state == CallState.FINISHED
    assert (call.name, call.socket_id, call.parent, call.tracking, call.taskparent, call.resultkey) == (
        NAME, socket_id, "p-1", "t-1", "tp-1", "rk-1")
    assert (call.created, call.started, call.finished) == (
        T0, T0 + dt.timedelta(seconds=1), T0 + dt.timedelta(seconds=2))
    assert sorted(e.name for e in events_of(db_url, call_id)) == ["postrun", "prerun", "received"]


def test_redelivered_call_is_recorded_finished_once(db_url: str, recorder: Recorder) -> None:
    call_id = new_id()
    recorder.received(call_id, NAME, None, when=T0)
    recorder.started(call_id, T0 + dt.timedelta(seconds=1), name=NAME)
    recorder.finished(call_id, "rk-1", T0 + dt.timedelta(seconds=2), name=NAME)
    recorder.finished(call_id, "rk-1", T0 + dt.timedelta(seconds=3), name=NAME)  # duplicate in the same batch
    assert recorder.flush(DEADLINE)
    # the broker redelivers it; it runs again, in later batches
    recorder.received(call_id, NAME, None, when=T0 + dt.timedelta(seconds=10))
    recorder.started(call_id, T0 + dt.timedelta(seconds=11), name=NAME)
    assert recorder.flush(DEADLINE)
    recorder.finished(call_id, "rk-2", T0 + dt.timedelta(seconds=12), name=NAME)
    assert recorder.flush(DEADLINE)

    call = calls_by_id(db_url)[call_id]
    assert (call.state, call.resultkey) == (CallState.FINISHED, "rk-1")
    assert (call.started, call.finished) == (T0 + dt.timedelta(seconds=1), T0 + dt.timedelta(seconds=2))
    assert Counter(e.name for e in events_of(db_url, call_id)) == {"received": 1, "prerun": 1, "postrun": 1}


def test_failed_call_stores_its_error_and_stays_failed(db_url: str, recorder: Recorder) -> None:
    call_id, error = new_id(), "Traceback (most recent call last):\n  ...\nValueError: boom"
    recorder.received(call_id, NAME, None, when=T0)
    recorder.failed(call_id, error, T0 + dt.timedelta(seconds=2), name=NAME)
    assert recorder.flush(DEADLINE)
    recorder.started(call_id, T0 + dt.timedelta(seconds=1), name=NAME)  # late, from another process
    assert recorder.flush(DEADLINE)

    call = calls_by_id(db_url)[call_id]
    assert (call.state, call.error, call.finished) == (CallState.FAILED, error, T0 + dt.timedelta(seconds=2))
    failure = [e for e in events_of(db_url, call_id) if e.name == EventName.FAILURE]
    assert len(failure) == 1 and failure[0].note == f"Failure for task {NAME}: Traceback (most recent call last):"


def test_retried_call_records_each_attempt_and_ends_finished(db_url: str, recorder: Recorder) -> None:
    call_id, revoked_id = new_id(), new_id()
    recorder.received(call_id, NAME, None, attempt=0)
    recorder.started(call_id, name=NAME, attempt=0)
    recorder.retried(call_id, "Retry in 1s", name=NAME, attempt=0)
    assert recorder.flush(DEADLINE)
    assert calls_by_id(db_url)[call_id].state == CallState.RETRY
    recorder.received(call_id, NAME, None, attempt=1)
    recorder.started(call_id, name=NAME, attempt=1)
    recorder.finished(call_id, "rk", name=NAME, attempt=1)
    recorder.received(revoked_id, NAME, None)
    recorder.revoked(revoked_id, name=NAME)
    assert recorder.flush(DEADLINE)

    calls = calls_by_id(db_url)
    assert calls[call_id].state == CallState.FINISHED and calls[revoked_id].state == CallState.REVOKED
    assert Counter(e.name for e in events_of(db_url, call_id)) == {"received": 2, "prerun": 2, "retry": 1, "postrun": 1}
    assert [e.note for e in events_of(db_url, revoked_id) if e.name == EventName.REVOKED] == [f"Revoked task {NAME}"]


@pytest.mark.parametrize("one_batch", [True, False], ids=["one-batch", "separate-batches"])
@pytest.mark.parametrize("refused_first", [True, False], ids=["refused-first", "refused-after"])
def test_a_refusal_of_a_calls_id_changes_none_of_its_columns(db_url: str, recorder: Recorder, one_batch: bool,
                                                              refused_first: bool) -> None:
    socket_id, call_id = make_socket(db_url), new_id()

    def refusal() -> None:
        recorder.refused(call_id, "attacker.name", None, "user 'joe' lacks the right RUN_TASK", T0, sender="joe",
                         tracking="attacker-tracking")

    def the_call() -> None:
        recorder.received(call_id, NAME, socket_id, tracking=call_id, when=T0 + dt.timedelta(seconds=1),
                          sender="ann")
        recorder.started(call_id, T0 + dt.timedelta(seconds=2), name=NAME)
        recorder.finished(call_id, "rk-1", T0 + dt.timedelta(seconds=3), name=NAME)

    for step in (refusal, the_call) if refused_first else (the_call, refusal):
        step()
        if not one_batch:
            assert recorder.flush(DEADLINE)
    assert recorder.flush(DEADLINE)

    call = calls_by_id(db_url)[call_id]
    assert (call.state, call.name, call.sender, call.socket_id, call.tracking, call.resultkey) == (
        CallState.FINISHED, NAME, "ann", socket_id, call_id, "rk-1")
    assert call.created == T0 + dt.timedelta(seconds=1)
    assert sorted(e.name for e in events_of(db_url, call_id)) == ["postrun", "prerun", "received", "refused"]


def test_call_of_a_vanished_socket_is_kept_without_it(db_url: str, recorder: Recorder) -> None:
    good, orphan = new_id(), new_id()
    recorder.received(good, NAME, None)
    recorder.received(orphan, NAME, new_id())  # no such socket: a foreign key violation
    recorder.finished(orphan, "rk", name=NAME)
    assert recorder.flush(DEADLINE) and recorder.pending == 0

    calls = calls_by_id(db_url)
    assert calls[good].state == CallState.RECEIVED
    assert (calls[orphan].state, calls[orphan].socket_id, calls[orphan].resultkey) == (CallState.FINISHED, None, "rk")


def test_once_a_socket_is_known_gone_its_later_calls_take_no_slow_path(db_url: str, recorder: Recorder,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="pyfi.worker.recorder")
    gone = new_id()
    later = [new_id() for _ in range(3)]
    for call_id in [new_id(), *later]:  # one batch each: the first finds the socket gone
        recorder.received(call_id, NAME, gone)
        assert recorder.flush(DEADLINE)
    assert sum("rejected" in r.getMessage() for r in caplog.records) == 2  # the batch, then its call: once
    assert all(calls_by_id(db_url)[c].state == CallState.RECEIVED for c in later)


def test_a_call_id_longer_than_a_uuid_is_stored(db_url: str, recorder: Recorder) -> None:
    """A plain Celery client may send a call to a socket with an id of its own choosing."""
    call_id = "order-2026-11-27-" + "x" * 200
    recorder.received(call_id, NAME, None, parent=call_id, tracking=call_id, taskparent=call_id)
    recorder.finished(call_id, "rk", name=NAME)
    assert recorder.flush(DEADLINE)
    call = calls_by_id(db_url)[call_id]
    assert (call.state, call.tracking, call.parent) == (CallState.FINISHED, call_id, call_id)
    assert len(events_of(db_url, call_id)) == 2


def test_a_batch_is_written_once_records_stop_coming(db_url: str) -> None:
    """A call's records wait for no gathering limit once nothing more comes (a worker done with its calls)."""
    rec = Recorder(db_url, quiet=0.1, longest_gather=3600.0)
    for _ in range(5):
        rec.received(new_id(), NAME, None)
    wait_for(lambda: count_calls(db_url) == 5, DEADLINE, "the calls written after the quiet", interval=0.05)
    assert rec.stop(DEADLINE)


def test_records_that_keep_coming_are_written_after_the_longest_gather(db_url: str) -> None:
    """While calls keep coming their records wait, but never past ``longest_gather``."""
    rec = Recorder(db_url, quiet=3600.0, longest_gather=0.3)
    first = new_id()
    rec.received(first, NAME, None)

    def written_while_coming() -> bool:
        rec.received(new_id(), NAME, None)  # never quiet
        return count_calls(db_url) > 0

    wait_for(written_while_coming, DEADLINE, "a batch written while records keep coming", interval=0.02)
    assert rec.stop(DEADLINE)


def test_stop_writes_everything_pending(db_url: str) -> None:
    rec = Recorder(db_url, longest_gather=60.0)
    for _ in range(50):
        rec.received(new_id(), NAME, None)
    assert rec.pending == 50
    assert rec.stop(DEADLINE) and rec.pending == 0
    assert count_calls(db_url) == 50


def _child_records(rec: Recorder, parent_ids: list[str], child_ids: list[str]) -> None:
    """In the forked child: what a prefork pool child (and parent) would record."""
    if rec.pending != 0:  # the parent's queued records are the parent's to write
        os._exit(3)
    for call_id in parent_ids:
        rec.started(call_id, name=NAME)
        rec.finished(call_id, "rk", name=NAME)
    for call_id in child_ids:
        rec.received(call_id, NAME, None)
    os._exit(0 if rec.stop(DEADLINE) else 4)


def test_records_from_a_forked_child_and_its_parent_both_land(db_url: str, recorder: Recorder) -> None:
    parent_ids, child_ids = [new_id() for _ in range(200)], [new_id() for _ in range(200)]
    recorder.received(new_id(), NAME, None)  # the writer thread runs (and may hold records) at fork time
    child = multiprocessing.get_context("fork").Process(target=_child_records, args=(recorder, parent_ids, child_ids))
    child.start()
    for call_id in parent_ids:
        recorder.received(call_id, NAME, None)
    for call_id in child_ids:
        recorder.started(call_id, name=NAME)
        recorder.finished(call_id, "rk", name=NAME)
    child.join(DEADLINE)
    assert child.exitcode == 0
    assert recorder.flush(DEADLINE)

    assert count_calls(db_url, CallState.FINISHED) == 400
    assert len(events_of(db_url)) == 1 + 400 * 3


# -- outages: the database goes away (or is not there yet) and comes back ----------------

def _outage_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "cannot write" in r.getMessage()]


def _record_during_outage(rec: Recorder, caplog: pytest.LogCaptureFixture, n: int) -> list[str]:
    ids = [new_id() for _ in range(n)]
    for call_id in ids:
        rec.received(call_id, NAME, None)
        rec.started(call_id, name=NAME)
        rec.finished(call_id, "rk", name=NAME)
    wait_for(lambda: _outage_warnings(caplog), DEADLINE, "the recorder to notice the outage", interval=0.02)
    assert not rec.flush(0.3) and rec.pending == 3 * n  # nothing lost, nothing written
    return ids


@pytest.fixture
def outage_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.WARNING, logger="pyfi.worker.recorder")
    return caplog


def test_sqlite_outage_until_the_path_and_schema_exist(tmp_path: Path, outage_log: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the database directory should be")
    url = f"sqlite:///{blocker}/pyfi.db"
    rec = Recorder(url, longest_gather=0.05, max_backoff=0.2)
    ids = _record_during_outage(rec, outage_log, 100)

    blocker.unlink()  # the directory can now be created, but the schema is still missing
    migrate.upgrade(url)
    wait_for(lambda: rec.pending == 0, DEADLINE, "the recorder to catch up", interval=0.02)
    assert rec.stop(5)
    assert count_calls(url, CallState.FINISHED) == len(ids) and len(events_of(url)) == 3 * len(ids)
    assert len(_outage_warnings(outage_log)) == 1


def test_postgres_outage_while_connections_are_refused(pg_migrated: str, outage_log: pytest.LogCaptureFixture) -> None:
    url, name = pg_migrated, make_url(pg_migrated).database
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    rec = Recorder(url, longest_gather=0.05, max_backoff=0.2)
    rec.received(new_id(), NAME, None)
    assert rec.flush(DEADLINE)  # the pool now holds a live connection, soon to be killed
    try:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))  # name: generated by conftest
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"),
                         {"name": name})
        ids = _record_during_outage(rec, outage_log, 100)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        admin.dispose()
    wait_for(lambda: rec.pending == 0, DEADLINE, "the recorder to catch up", interval=0.02)
    assert rec.stop(5)
    calls = calls_by_id(url)
    assert all(calls[i].state == CallState.FINISHED for i in ids)
    with session_scope(url) as session:
        landed = session.scalar(select(func.count()).select_from(Event).where(Event.call_id.in_(ids)))
    assert landed == 3 * len(ids)
    assert len(_outage_warnings(outage_log)) == 1


def test_backoff_doubles_up_to_its_cap_even_after_thousands_of_failures() -> None:
    """An outage of hours must not overflow the delay and kill the writer thread (records would be lost)."""
    assert [backoff(n, 2.0) for n in (1, 2, 3)] == [0.05, 0.1, 0.2]
    assert backoff(6, 2.0) == 1.6 and backoff(7, 2.0) == 2.0 and backoff(5000, 2.0) == 2.0


def test_a_stop_during_an_outage_saves_the_records_and_the_next_recorder_writes_them(
        tmp_path: Path, home: Path, outage_log: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the database directory should be")
    url = f"sqlite:///{blocker}/pyfi.db"
    rec = Recorder(url, longest_gather=0.05, max_backoff=0.2)
    ids = _record_during_outage(rec, outage_log, 100)
    assert not rec.stop(0.5)  # the database is still down when the worker must go
    [saved] = list(journal.journal_dir(url).iterdir())
    assert "300 records saved" in outage_log.text

    blocker.unlink()
    migrate.upgrade(url)
    later = Recorder(url, longest_gather=0.05)  # the next worker on this machine
    later.start()
    assert later.flush(DEADLINE) and later.stop(5)
    assert count_calls(url, CallState.FINISHED) == len(ids) and len(events_of(url)) == 3 * len(ids)
    wait_for(lambda: not saved.exists() and not list(journal.journal_dir(url).iterdir()),
             DEADLINE, "the journal file to go", interval=0.02)


def test_a_long_outage_moves_records_to_disk_and_writes_them_when_the_database_is_back(
        tmp_path: Path, home: Path, outage_log: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the database directory should be")
    url = f"sqlite:///{blocker}/pyfi.db"
    rec = Recorder(url, longest_gather=0.05, max_backoff=0.2, max_batch=20, memory_cap=50)
    ids = [new_id() for _ in range(100)]
    for call_id in ids:
        rec.received(call_id, NAME, None)
        rec.started(call_id, name=NAME)
        rec.finished(call_id, "rk", name=NAME)
    flushed = rec.request_flush()  # waits for all 300, wherever they wait
    wait_for(lambda: "moved from memory" in outage_log.text, DEADLINE, "the recorder to move records to disk", interval=0.02)
    assert rec.pending <= 50  # the batch being retried; the rest is on disk
    [spilled] = list(journal.journal_dir(url).iterdir())
    assert len(spilled.read_bytes().splitlines()) == 300 - rec.pending
    assert not flushed.is_set()

    blocker.unlink()
    migrate.upgrade(url)
    assert flushed.wait(DEADLINE)
    assert count_calls(url, CallState.FINISHED) == len(ids) and len(events_of(url)) == 3 * len(ids)
    assert rec.stop(5)
    wait_for(lambda: not list(journal.journal_dir(url).iterdir()), DEADLINE, "the journal file to go", interval=0.02)


def test_text_the_database_cannot_hold_is_stored_escaped_and_costs_no_record(db_url: str, recorder: Recorder) -> None:
    odd, plain = new_id(), new_id()
    recorder.received(odd, NAME, None)
    recorder.failed(odd, "ValueError: cannot parse caf\udce9.txt\x00", name=NAME)  # a file name decoded with surrogateescape
    recorder.received(plain, NAME, None)
    recorder.finished(plain, "rk", name=NAME)
    assert recorder.flush(DEADLINE)
    calls = calls_by_id(db_url)
    assert calls[odd].state == CallState.FAILED and calls[odd].error == "ValueError: cannot parse caf\\udce9.txt\\x00"
    assert calls[plain].state == CallState.FINISHED


def test_a_journal_file_whose_claimant_died_is_written_by_the_next_recorder(db_url: str, home: Path) -> None:
    import datetime as dt
    import subprocess

    from pyfi.enums import EventName
    from pyfi.worker.rows import Record

    call_id = new_id()
    when = dt.datetime(2026, 11, 27, 8, 0, 0, 123456)
    saved = journal.save(db_url, [Record(call_id, CallState.FINISHED, EventName.POSTRUN, when, 0, "Postrun",
                                         {"name": NAME, "resultkey": "rk", "finished": when})])
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that no longer runs
    claimed = saved.with_name(f"{saved.name}{journal.CLAIMED}{dead.pid}")
    saved.rename(claimed)
    rec = Recorder(db_url, longest_gather=0.05)
    rec.start()
    assert rec.flush(DEADLINE) and rec.stop(5)
    row = calls_by_id(db_url)[call_id]
    assert (row.state, row.resultkey, row.finished) == (CallState.FINISHED, "rk", when)
    wait_for(lambda: not list(journal.journal_dir(db_url).iterdir()), DEADLINE, "the journal file to go", interval=0.02)


def test_a_pending_call_moves_on_with_its_worker_and_a_cancelled_one_stays_cancelled(db_url: str,
                                                                                        recorder: Recorder) -> None:
    from sqlalchemy import update

    from pyfi.core.pending import Pending, record_pending

    ran, refused, cancelled = new_id(), new_id(), new_id()
    with session_scope(db_url) as session:  # as `task run` records them, before any worker
        record_pending(session, "ann", [Pending(c, NAME, None, sent=T0) for c in (ran, refused, cancelled)])
        session.execute(update(Call).where(Call.id == cancelled).values(state=CallState.CANCELLED, cancelled_by="ann"))
    recorder.received(ran, NAME, None, sender="bob")  # the gate's word on who sent it
    recorder.finished(ran, "rk", name=NAME)
    recorder.refused(refused, NAME, None, "unsigned")
    recorder.received(cancelled, NAME, None)
    recorder.finished(cancelled, "rk", name=NAME)  # it ran (cancelled while running, without --terminate)
    assert recorder.flush(DEADLINE)
    calls = calls_by_id(db_url)
    assert (calls[ran].state, calls[ran].sender, calls[ran].created) == (CallState.FINISHED, "bob", T0)
    assert calls[refused].state == CallState.REFUSED
    assert (calls[cancelled].state, calls[cancelled].cancelled_by) == (CallState.CANCELLED, "ann")


def test_a_call_run_twice_keeps_the_events_of_each_run_naming_its_worker(db_url: str) -> None:
    """A call redelivered after its worker died runs again elsewhere: one row, each run's events, each worker named."""
    call_id = new_id()
    for worker in ("101@node1", "202@node2"):
        recorder = Recorder(db_url, worker=worker)
        recorder.received(call_id, NAME, None)
        recorder.started(call_id, name=NAME)
        recorder.started(call_id, name=NAME)  # a duplicate of a run's own record still counts once
        recorder.finished(call_id, "rk", name=NAME)
        assert recorder.flush(DEADLINE)
        recorder.stop()
    assert calls_by_id(db_url)[call_id].state == CallState.FINISHED
    seen = Counter((str(e.name), e.worker) for e in events_of(db_url, call_id))
    assert seen == {(event, worker): 1 for event in ("received", "prerun", "postrun")
                    for worker in ("101@node1", "202@node2")}
