"""pyfi.client: find-or-create objects, calls, workflows and decorators, on both databases.

The first half needs only a database (``db_url``); the second runs a real
network (one agent per stack for the module) and checks what the workers
recorded: every call of a workflow under one tracking id, with its parents.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Iterator

import pytest

from clientnet import Network, calls_of_flow, open_network, wait_for

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = (ROOT / "examples" / "processors" / "sample.py").read_text(encoding="utf-8")
DECORATED = textwrap.dedent('''
    from pyfi.client import socket
    from sample import do_this  # imported, not declared here: register must skip it


    @socket(queue="deco.q")
    def double(x):
        return x * 2


    @socket(queue="deco.q", name="deco.twice")
    @socket(queue="deco.other", name="deco.twice-too")
    def twice(x):
        return [x, x]
''')


def context(**flags):
    from pyfi.client import Context

    return Context(**flags)


# -- objects: find or create, with the CLI's rights -------------------------------------------


def test_find_or_create_then_update_only_what_differs(db_url):
    from pyfi.client import Processor, Queue, Socket
    from pyfi.core.desired import Action

    ctx = context()
    queue = Queue("q1", "direct", context=ctx)
    assert (queue.change, queue.type) == (Action.CREATE, "direct")
    again = Queue("q1", context=ctx)
    assert (again.change, again.id, again) == (Action.UNCHANGED, queue.id, queue)
    proc = Processor("p1", "sample", "/repo", context=ctx, branch="main", workers=2)
    assert (proc.module, proc.workers, proc.branch) == ("sample", 2, "main")
    changed = Processor("p1", workers=3, context=ctx)
    assert (changed.change, changed.workers, changed.branch) == (Action.UPDATE, 3, "main")

    def do_something(message):  # the function stands for its name
        return message

    sock = Socket("greet", processor=proc, queue=queue, task=do_something, context=ctx)
    assert (sock.processor, sock.queue, sock.task, sock.wait) == ("p1", "q1", "do_something", False)
    found = Socket("greet", context=ctx)
    assert (found.change, found.id) == (Action.UNCHANGED, sock.id)
    moved = Socket("greet", queue=Queue("q2", context=ctx), context=ctx)
    assert (moved.change, moved.queue) == (Action.UPDATE, "q2")
    assert "Socket(name='greet', processor='p1', queue='q2', task='do_something'" in repr(moved)


def test_plug_and_errors_name_the_fix(db_url):
    from pyfi.client import Plug, Processor, Queue, Socket
    from pyfi.errors import InvalidInput, NotFound

    ctx = context()
    proc = Processor("p1", "sample", "/repo", context=ctx)
    queue = Queue("q", context=ctx)
    a = Socket("a", proc, queue, "do_this", context=ctx)
    b = Socket("b", proc, "q", "do_something", context=ctx)  # related objects by name work too
    plug = Plug("a-b", source=a, target=b, queue="q", context=ctx)
    assert (plug.source, plug.target, plug.type, plug.position) == ("a", "b", "RESULT", 0)
    with pytest.raises(InvalidInput, match="cannot be created without processor, queue, task"):
        Socket("nope", context=ctx)
    with pytest.raises(NotFound, match="no queue named 'qq'"):
        Socket("c", proc, "qq", "do_this", context=ctx)
    with pytest.raises(InvalidInput, match="unknown queue type 'fanin'"):
        Queue("q9", "fanin", context=ctx)
    with pytest.raises(InvalidInput, match="'workers' must be at least 1"):
        Processor("p1", workers=0, context=ctx)


def test_a_user_without_rights_is_refused_and_nothing_changes(db_url):
    from pyfi.client import Queue
    from pyfi.db.engine import session_scope
    from pyfi.db.models import Queue as QueueRow, User
    from pyfi.errors import PermissionDenied

    with session_scope(db_url) as session:
        session.add(User(name="joe", owner="admin"))  # a user with no privileges at all
    with pytest.raises(PermissionDenied, match="lacks the right ADD_QUEUE"):
        Queue("jobs", context=context(user="joe"))
    Queue("jobs", context=context())
    with pytest.raises(PermissionDenied, match="lacks the right READ_QUEUE"):
        Queue("jobs", context=context(user="joe"))
    with session_scope(db_url) as session:
        assert session.query(QueueRow).count() == 1


def test_the_git_allow_list_applies_to_the_client_too(db_url):
    from pyfi.client import Processor
    from pyfi.db.engine import session_scope
    from pyfi.db.models import Processor as ProcessorRow
    from pyfi.errors import PermissionDenied

    strict = context(git_allow="https://git.example.com/team/*")
    with pytest.raises(PermissionDenied, match="is not in the allowed list"):
        Processor("p1", "sample", "https://elsewhere.example.com/x.git", context=strict)
    assert Processor("p1", "sample", "https://git.example.com/team/x.git", context=strict).module == "sample"
    with session_scope(db_url) as session:
        assert [p.name for p in session.query(ProcessorRow)] == ["p1"]


def test_the_context_is_lazy(db_url, tmp_path):
    from pyfi.client import Context
    from pyfi.errors import ConfigError

    ctx = Context(db="not-a-uri")  # nothing is resolved yet
    with pytest.raises(ConfigError, match="invalid db URI"):
        assert ctx.settings


def test_a_decorated_module_imports_without_a_database(tmp_path):
    (tmp_path / "sample.py").write_text(SAMPLE)
    (tmp_path / "decorated.py").write_text(DECORATED)
    code = ("import sys, decorated\nfrom pyfi.client import declared\n"
            "print([(d.name, d.queue, d.function) for d in declared(decorated)])\n"
            "print('celery' in sys.modules, 'sqlalchemy' in sys.modules)\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "PYFI_DB": "postgresql://nobody@127.0.0.1:1/none",
           "PYFI_HOME": str(tmp_path / "no-home")}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "[('deco.twice', 'deco.q', 'twice'), ('deco.twice-too', 'deco.other', 'twice'), ('double', 'deco.q', 'double')]",
        "False False",
    ]
    assert not (tmp_path / "no-home").exists()


def test_register_refuses_a_processor_running_another_module(db_url, tmp_path, monkeypatch):
    from pyfi.client import Processor, register
    from pyfi.errors import InvalidInput

    (tmp_path / "sample.py").write_text(SAMPLE)
    (tmp_path / "decorated.py").write_text(DECORATED)
    monkeypatch.syspath_prepend(str(tmp_path))
    proc = Processor("p1", "sample", "/repo", context=context())
    with pytest.raises(InvalidInput, match="runs module 'sample', not 'decorated'"):
        register("decorated", proc)


# -- a real network ---------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def network(request, tmp_path_factory) -> Iterator[Network]:
    files = {"sample.py": SAMPLE, "decorated.py": DECORATED}
    yield from open_network(request.param, tmp_path_factory.mktemp(f"client-{request.param}"), request, files)


@pytest.fixture(scope="module")
def net(network: Network):
    """The sample sockets on a direct queue, made through the client."""
    from pyfi.client import Context, Processor, Queue, Socket

    ctx = Context(settings=network.settings(), timeout=120)
    queue = Queue("cq", "direct", context=ctx)
    proc = Processor("cp", "sample", str(network.tmp / "repo"), context=ctx, branch="main", workers=2)
    names = {"greet": "do_something", "shout": "do_this", "count": "word_count", "total": "total", "fail": "fail"}
    sockets = {n: Socket(f"c.{n}", proc, queue, task, context=ctx) for n, task in names.items()}
    return network, ctx, proc, sockets


def recorded(network: Network, handle, count: int) -> dict[str, dict]:
    """The calls the workers recorded under the handle's tracking id, once all ``count`` are there.

    (The client records each as pending when it sends it: a worker's record has what it learnt running it.)
    """
    def taken(rows: list[dict]) -> list[dict] | None:
        return rows if len(rows) >= count and all(r["state"] != "pending" for r in rows) else None

    rows = wait_for(lambda: taken(calls_of_flow(network.db_url, handle.id)),
                    timeout=30, what=f"{count} calls recorded under tracking {handle.id}")
    return {r["id"]: r for r in rows}


def test_a_call_and_delay_get(net):
    network, ctx, proc, s = net
    assert s["greet"]("World") == "Message:World"
    handle = s["shout"].delay("hello")
    assert handle.get(timeout=60) == "HELLO" and handle.ready()
    assert s["greet"].delay(message="kw").get() == "Message:kw"  # keyword arguments travel too
    calls = recorded(network, handle, 1)
    assert calls[handle.id]["tracking"] == handle.id and calls[handle.id]["name"] == "sample.do_this"


def test_pipeline_records_one_flow_with_parents(net):
    from pyfi.client import pipeline

    network, ctx, proc, s = net
    handle = pipeline([s["shout"].s("a b"), s["greet"], s["count"]]).delay()
    assert handle.get() == 2
    calls = recorded(network, handle, 3)
    first, second, third = handle.ids
    assert set(calls) == set(handle.ids) and {c["tracking"] for c in calls.values()} == {first}
    assert [calls[i]["parent"] for i in handle.ids] == [None, first, second]
    assert [calls[i]["name"] for i in handle.ids] == ["sample.do_this", "sample.do_something", "sample.word_count"]


def test_parallel_and_funnel_record_one_flow(net):
    from pyfi.client import funnel, parallel, pipeline

    network, ctx, proc, s = net
    group = parallel([s["greet"].s("a"), s["shout"].s("b")]).delay()
    assert group.get() == ["Message:a", "B"]
    calls = recorded(network, group, 2)
    assert {c["tracking"] for c in calls.values()} == {group.id} and all(c["parent"] is None for c in calls.values())

    texts = ["one", "two three", "four five six"]
    chord = funnel([s["count"].s(t) for t in texts], s["total"]).delay()
    assert chord.get() == 6
    calls = recorded(network, chord, 4)
    assert {c["tracking"] for c in calls.values()} == {chord.id}
    assert calls[chord.ids[-1]]["parent"] == chord.ids[-2]  # the funnel's last call names a header call

    nested = pipeline([parallel([s["count"].s(t) for t in texts]), s["total"], s["greet"]]).delay()
    assert nested.get() == "Message:6"
    calls = recorded(network, nested, 5)
    assert {c["tracking"] for c in calls.values()} == {nested.id}
    assert [calls[i]["parent"] for i in nested.ids[-2:]] == [nested.ids[2], nested.ids[3]]


def test_a_failing_step_raises_call_failed_naming_the_call(net):
    from pyfi.client import pipeline
    from pyfi.errors import CallFailed

    network, ctx, proc, s = net
    handle = pipeline([s["greet"].s("x"), s["fail"], s["shout"]]).delay()
    with pytest.raises(CallFailed, match=f"call {handle.ids[1]} failed: ValueError: cannot handle 'Message:x'"):
        handle.get()


def test_a_call_nobody_serves_times_out(net):
    from pyfi.client import Processor, Queue, Socket
    from pyfi.errors import CallTimeout

    network, ctx, proc, s = net
    idle = Processor("idle", "sample", str(network.tmp / "repo"), requested_status="stopped", context=ctx)
    sock = Socket("c.idle", idle, Queue("cq-idle", context=ctx), "do_this", context=ctx)
    start = time.monotonic()
    try:
        with pytest.raises(CallTimeout, match="did not finish within 1.0 s"):
            sock.delay("x").get(timeout=1.0)
        assert time.monotonic() - start < 10
    finally:
        with ctx.app.connection_for_write() as conn:  # leave no message behind on a shared broker
            conn.default_channel.queue_purge("pyfi.cq-idle.sample.do_this")


def test_fanout_socket_calls_every_destination_but_is_no_workflow_step(net):
    from pyfi.client import Queue, Socket, pipeline
    from pyfi.errors import InvalidInput

    network, ctx, proc, s = net
    fan = Queue("cfan", "fanout", context=ctx)
    a = Socket("c.fan-a", proc, fan, "do_this", context=ctx)
    Socket("c.fan-b", proc, fan, "do_something", context=ctx)
    handle = a.delay("x")
    assert handle.get() == ["X", "Message:x"]
    assert {c["tracking"] for c in recorded(network, handle, 2).values()} == {handle.id}
    with pytest.raises(InvalidInput, match="sends each call to 2 destinations"):
        pipeline([a.s("x"), s["greet"]]).delay()


def test_register_declared_sockets_and_call_them(net, monkeypatch):
    import importlib

    from pyfi.client import Processor, pipeline, register

    network, ctx, proc, s = net
    monkeypatch.syspath_prepend(str(network.tmp / "repo"))
    decorated = importlib.import_module("decorated")
    deco = Processor("deco", "decorated", str(network.tmp / "repo"), branch="main", context=ctx)
    sockets = register(decorated, deco, context=ctx)
    assert [(x.name, x.queue, x.task) for x in sockets] == [
        ("deco.twice", "deco.q", "twice"), ("deco.twice-too", "deco.other", "twice"), ("double", "deco.q", "double")]
    assert [x.change.value for x in register(decorated, "deco", context=ctx)] == ["unchanged"] * 3
    twice, _, double = sockets
    assert pipeline([double.s(21), twice])() == [42, 42]
