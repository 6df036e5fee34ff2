"""Dataflow with real agents and workers: plugs, joins, ERROR plugs, routers, shell chains.

One network per database kind, shared by the module (an agent takes seconds
to deploy): SQLite with the embedded broker/backend/pub-sub files, and
PostgreSQL with Redis. Every wait polls with a deadline.
"""
from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from network import make_repo, wait_for
from pyfi.testing import WaitTimeout
from click.testing import CliRunner
from sqlalchemy import create_engine, insert, select, text

from pyfi.db.engine import session_scope
from pyfi.db.models import Call, JoinArrival, Plug, Socket

from conftest import PG_ADMIN_URL, require_service

PYFI = f"{shlex.quote(sys.executable)} -c 'import sys; from pyfi.cli import main; sys.exit(main())'"
BROKER_DB, BACKEND_DB = 9, 10  # Redis DBs of this module; every name in them carries the run's tag

MODULE = '''
from pyfi.flow import Routed

def a(x): return f"a({x})"
def b(x): return f"b({x})"
def c(x): return f"c({x})"
def fan(x): return {"value": x}
def left(x): return ["left", x]
def right(x): return ["right", x]
def d(x, y): return {"x": x, "y": y}
def boom(x): raise ValueError(f"boom {x}")
def handle(error): return {"handled": error}
def route(x): return Routed({"route-even": x}) if int(x) % 2 == 0 else Routed({"route-odd": x})
def even(x): return ["even", x]
def odd(x): return ["odd", x]
'''

# processor -> (workers, retries, {socket: wait})
PROCESSORS = {
    "p1": (2, 0, {"a": 0, "b": 0, "c": 0, "fan": 0, "left": 0, "d": 1, "handle": 0, "route": 0, "even": 0, "odd": 0}),
    "p2": (1, 1, {"right": 0, "boom": 0}),  # another worker: the two sides of the join race for real
}
# plug name -> (source, target, position, type)
PLUGS = {
    "a-b": ("a", "b", 0, "RESULT"), "b-c": ("b", "c", 0, "RESULT"),
    "fan-left": ("fan", "left", 0, "RESULT"), "fan-right": ("fan", "right", 0, "RESULT"),
    "left-d": ("left", "d", 0, "RESULT"), "right-d": ("right", "d", 1, "RESULT"),
    "boom-handle": ("boom", "handle", 0, "ERROR"), "boom-b": ("boom", "b", 0, "RESULT"),
    "route-even": ("route", "even", 0, "RESULT"), "route-odd": ("route", "odd", 0, "RESULT"),
}


class Net:
    """The module's network: settings, CLI, database reads, the agent."""

    def __init__(self, kind: str, home: Path, db: str, env: dict[str, str], tag: str) -> None:
        self.kind, self.home, self.db, self.env, self.tag = kind, home, db, env, tag
        self.runner = CliRunner()
        self.agent: subprocess.Popen | None = None

    def cli(self, *args: str, input: str | None = None, code: int = 0) -> str:
        overrides = {**self.env, "PYFI_INI": None, "PYFI_PARENT": None, "PYFI_TRACKING": None}
        from pyfi.cli import cli

        result = self.runner.invoke(cli, list(args), input=input, env=overrides, catch_exceptions=False)
        assert result.exit_code == code, (args, result.output)
        return result.stdout

    def shell(self, pipeline: str) -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYFI_")} | self.env
        done = subprocess.run(["bash", "-o", "pipefail", "-c", pipeline], env=env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, (pipeline, done.stderr)
        return done.stdout

    def chain(self, socket: str, data: str, timeout: int = 60) -> dict[str, Any]:
        """Call ``socket`` and return its envelope: {"call", "tracking", "result"}."""
        return json.loads(self.cli("task", "run", "-s", socket, "-d", data, "--chain", "--timeout", str(timeout)))

    def send(self, socket: str, data: str) -> str:
        return self.cli("task", "run", "-s", socket, "-d", data, "--no-wait").strip()

    def flow(self, tracking: str) -> list[dict[str, Any]]:
        """Every call of a flow, as plain dicts with the socket's name."""
        with session_scope(self.db) as session:
            rows = session.execute(select(Call, Socket.name).outerjoin(Socket, Socket.id == Call.socket_id)
                                   .where(Call.tracking == tracking).order_by(Call.created))
            return [dict(row[0].to_dict(), socket=row[1]) for row in rows]

    def finished(self, tracking: str, socket: str, count: int = 1) -> list[dict[str, Any]] | None:
        done = [c for c in self.flow(tracking) if c["socket"] == socket and c["state"] == "finished"]
        return done if len(done) >= count else None

    def result(self, call_id: str) -> Any:
        stored = json.loads(self.cli("ls", "call", "--id", call_id, "--result", "--json"))["result"]
        assert stored["state"] == "SUCCESS", stored
        return stored["value"]

    def pending_joins(self, tracking: str) -> int:
        with session_scope(self.db) as session:
            return len(session.scalars(select(JoinArrival.id).where(JoinArrival.tracking == tracking)).all())

    def start_agent(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYFI_")} | self.env
        log = open(self.home / "agent.log", "ab")
        argv = [sys.executable, "-c", "import sys; from pyfi.cli import main; sys.exit(main())", "agent", "start",
                "-n", "node1"]
        self.agent = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def stop_agent(self) -> None:
        if self.agent is None or self.agent.poll() is not None:
            return
        self.agent.send_signal(signal.SIGTERM)
        try:
            self.agent.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.agent.kill()
            self.agent.wait(timeout=10)
        for meta in self.home.glob("agents/*/run/*/meta.json"):  # no worker of ours may outlive the module
            try:
                os.killpg(json.loads(meta.read_text())["pid"], signal.SIGKILL)
            except (OSError, ValueError, KeyError):
                pass


def build(net: Net, repo: Path) -> None:
    queue = f"df{net.tag}"
    net.cli("add", "queue", "-n", queue, "-t", "direct")
    for proc, (workers, retries, sockets) in PROCESSORS.items():
        net.cli("add", "processor", "-n", f"{proc}{net.tag}", "-m", "dfmod", "-g", str(repo), "-br", "main",
                "-w", str(workers), "-r", str(retries))
        for socket, wait in sockets.items():
            net.cli("add", "socket", "-n", socket, "-q", queue, "-pn", f"{proc}{net.tag}", "-t", socket,
                    *(["--wait"] if wait else []))
    for plug, (source, target, position, kind) in PLUGS.items():
        net.cli("add", "plug", "-n", plug, "-q", queue, "-s", source, "-t", target, "--position", str(position),
                "--type", kind)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def net(request, tmp_path_factory) -> Iterator[Net]:
    from pyfi.core.access import bootstrap_admin
    from pyfi.db import migrate
    from pyfi.db.engine import dispose_all

    tag = uuid.uuid4().hex[:8]
    home = tmp_path_factory.mktemp(f"dataflow-{request.param}")
    cleanup: list[Callable[[], None]] = []
    if request.param == "sqlite":
        db = f"sqlite:///{home}/pyfi.db"
        env = {"PYFI_BROKER": f"sqla+sqlite:///{home}/broker.db", "PYFI_BACKEND": f"db+sqlite:///{home}/results.db",
               "PYFI_PUBSUB": f"sqlite:///{home}/pubsub.db"}
    else:
        db, env = postgres_and_redis(tag, cleanup)
    env.update(PYFI_HOME=str(home), PYFI_DB=db, PYFI_USER="admin")
    migrate.upgrade(db)
    with session_scope(db) as session:
        bootstrap_admin(session, "admin")
    network = Net(request.param, home, db, env, tag)
    try:
        build(network, make_repo(home / "repo", {"dfmod.py": MODULE}, "dataflow"))
        network.start_agent()
        yield network
    finally:
        network.stop_agent()
        dispose_all()
        for step in reversed(cleanup):
            step()


def postgres_and_redis(tag: str, cleanup: list[Callable[[], None]]) -> tuple[str, dict[str, str]]:
    import redis

    try:
        redis.Redis(socket_connect_timeout=2).ping()
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "pyfi_df_{tag}"'))  # tag is generated here, never input
    except Exception as exc:  # noqa: BLE001 - any failure means "no server here"
        require_service("PostgreSQL and Redis", str(exc).splitlines()[0])
    db = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/pyfi_df_{tag}"

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "pyfi_df_{tag}" WITH (FORCE)'))
        admin.dispose()

    def flush_our_keys() -> None:
        """Only keys this run created: broker keys name the tagged queue; results are per call id."""
        with session_scope(db) as session:
            ids = session.scalars(select(Call.id)).all()
        broker, backend = redis.Redis(db=BROKER_DB), redis.Redis(db=BACKEND_DB)
        for key in broker.scan_iter(match=f"*{tag}*"):
            broker.delete(key)
        for call_id in ids:
            backend.delete(f"celery-task-meta-{call_id}")

    cleanup += [drop, flush_our_keys]
    return db, {"PYFI_BROKER": f"redis://localhost:6379/{BROKER_DB}",
                "PYFI_BACKEND": f"redis://localhost:6379/{BACKEND_DB}",
                "PYFI_PUBSUB": f"redis://localhost:6379/{BACKEND_DB}"}


# -- the tests ---------------------------------------------------------------------
def test_chain_a_b_c_forwards_results_and_draws_the_tree(net: Net):
    first = net.chain("a", '"x"', timeout=180)  # the first call also waits for the deployment
    assert first["result"] == "a(x)" and first["tracking"] == first["call"]
    tracking = first["tracking"]
    c_call = wait_for(lambda: net.finished(tracking, "c"), what="c in a's flow")[0]
    assert net.result(c_call["id"]) == "c(b(a(x)))"
    calls = {c["socket"]: c for c in net.flow(tracking)}
    assert set(calls) == {"a", "b", "c"}
    plug_ids = plug_ids_by_name(net)
    assert (calls["b"]["parent"], calls["b"]["plug_id"]) == (first["call"], plug_ids["a-b"])
    assert (calls["c"]["parent"], calls["c"]["plug_id"]) == (calls["b"]["id"], plug_ids["b-c"])
    assert calls["b"]["taskparent"] == first["call"]

    tree = net.cli("ls", "call", "--id", first["call"], "--tree").rstrip("\n").splitlines()
    assert tree == ["dfmod.a", " └── dfmod.b", "     └── dfmod.c"]
    flow = json.loads(net.cli("ls", "call", "--id", c_call["id"], "--flow", "--json"))
    assert [c["name"] for c in flow] == ["dfmod.a", "dfmod.b", "dfmod.c"]
    listed = json.loads(net.cli("ls", "calls", "--tracking", tracking, "--socket", "c", "--json"))
    assert [r["id"] for r in listed["rows"]] == [c_call["id"]]


def test_fan_out_and_join_runs_once_with_arguments_in_position_order(net: Net):
    start = net.chain("fan", "7")
    tracking = start["tracking"]
    d_call = wait_for(lambda: net.finished(tracking, "d"), what="the join d")[0]
    wait_for(lambda: net.finished(tracking, "left") and net.finished(tracking, "right"), what="both sides")
    assert net.result(d_call["id"]) == {"x": ["left", {"value": 7}], "y": ["right", {"value": 7}]}
    flow = net.flow(tracking)
    assert sorted(c["socket"] for c in flow) == ["d", "fan", "left", "right"]  # d ran once
    assert net.pending_joins(tracking) == 0
    sides = {c["socket"]: c["id"] for c in flow}
    details = json.loads(net.cli("ls", "call", "--id", d_call["id"], "--json"))
    assert set(details["parents"]) == {sides["left"], sides["right"]}
    assert details["parent"] in details["parents"] and details["tracking"] == tracking

    graph = net.cli("ls", "call", "--id", d_call["id"], "--graph").rstrip("\n").splitlines()
    assert graph[0] == "dfmod.fan" and len(graph) == 5
    assert sum(line.endswith("dfmod.d [join]") for line in graph) == 1
    assert sum(line.endswith("dfmod.d [join, see above]") for line in graph) == 1
    table = net.cli("ls", "call", "--id", d_call["id"]).split("Events")[0]  # a join's Flow Parent: both sides
    assert sides["left"] in table and sides["right"] in table and details["plug"] in table
    assert details["plug"] in ("left-d", "right-d")


def test_concurrent_flows_through_one_join_never_mix(net: Net):
    values = list(range(100, 108))
    roots = {value: net.send("fan", str(value)) for value in values}  # sent back to back: the flows overlap
    for value, tracking in roots.items():
        d_call = wait_for(lambda tracking=tracking: net.finished(tracking, "d"), what=f"join of flow {value}")[0]
        assert net.result(d_call["id"]) == {"x": ["left", {"value": value}], "y": ["right", {"value": value}]}
    for tracking in roots.values():
        wait_for(lambda tracking=tracking: net.finished(tracking, "left") and net.finished(tracking, "right"),
                 what="both sides")
        assert [c["socket"] for c in net.flow(tracking)].count("d") == 1
        assert net.pending_joins(tracking) == 0


def test_error_plug_routes_the_final_failure_to_a_handler(net: Net):
    boom = net.send("boom", "3")
    handled = wait_for(lambda: net.finished(boom, "handle"), what="the error handler")[0]
    assert net.result(handled["id"]) == {"handled": {"type": "ValueError", "message": "boom 3", "call": boom}}
    assert handled["parent"] == boom and handled["plug_id"] == plug_ids_by_name(net)["boom-handle"]
    events = [e["name"] for e in json.loads(net.cli("ls", "call", "--id", boom, "--json"))["events"]]
    assert "retry" in events and events[-1] == "failure"  # p2 retries once; the ERROR plug fires after
    assert [c["socket"] for c in net.flow(boom)].count("handle") == 1
    assert "b" not in [c["socket"] for c in net.flow(boom)]  # RESULT plugs stay silent on failure
    failed = json.loads(net.cli("ls", "calls", "--state", "failed", "--tracking", boom, "--json"))
    assert [r["id"] for r in failed["rows"]] == [boom]


def test_router_sends_only_to_the_named_plugs(net: Net):
    even_flow, odd_flow = net.send("route", "4"), net.send("route", "5")
    even = wait_for(lambda: net.finished(even_flow, "even"), what="the even branch")[0]
    odd = wait_for(lambda: net.finished(odd_flow, "odd"), what="the odd branch")[0]
    assert net.result(even["id"]) == ["even", 4] and net.result(odd["id"]) == ["odd", 5]
    assert net.result(even_flow) == {"route-even": 4}  # the stored result is the plain mapping
    wait_for(lambda: net.finished(even_flow, "route") and net.finished(odd_flow, "route"), what="routers recorded")
    assert sorted(c["socket"] for c in net.flow(even_flow)) == ["even", "route"]
    assert sorted(c["socket"] for c in net.flow(odd_flow)) == ["odd", "route"]


def test_pending_join_is_kept_in_the_database(net: Net):
    """A join half-filled before (say) a worker restart completes from its rows."""
    tracking, earlier = str(uuid.uuid4()), str(uuid.uuid4())
    with session_scope(net.db) as session:
        d = session.scalar(select(Socket.id).where(Socket.name == "d"))
        session.execute(insert(JoinArrival), [{"id": str(uuid.uuid4()), "tracking": tracking, "socket_id": d,
                                               "position": 0, "value": '["left", "before"]', "call_id": earlier}])
    right = json.loads(net.cli("task", "run", "-s", "right", "-d", '"after"', "--tracking", tracking, "--chain"))
    assert right["tracking"] == tracking
    d_call = wait_for(lambda: net.finished(tracking, "d"), what="the join to complete")[0]
    assert net.result(d_call["id"]) == {"x": ["left", "before"], "y": ["right", "after"]}
    assert set(json.loads(net.cli("ls", "call", "--id", d_call["id"], "--json"))["parents"]) == {earlier, right["call"]}
    assert net.pending_joins(tracking) == 0


def test_shell_pipes_plain_and_chained(net: Net):
    plain = net.shell(f"echo hi | {PYFI} task run -s even | {PYFI} task run -s odd")
    assert json.loads(plain) == ["odd", ["even", "hi"]]
    out = net.shell(f"echo 5 | {PYFI} task run -s even --chain | {PYFI} task run -s odd --chain")
    last = json.loads(out)
    assert last["result"] == ["odd", ["even", 5]] and last["pyfi"] == "chain"
    tracking = last["tracking"]
    first = wait_for(lambda: net.finished(tracking, "even"), what="the first stage")[0]
    second = wait_for(lambda: net.finished(tracking, "odd"), what="the second stage")[0]
    assert first["id"] == tracking and second["id"] == last["call"] and second["parent"] == first["id"]
    tree = net.cli("ls", "call", "--id", first["id"], "--tree").rstrip("\n").splitlines()
    assert tree == ["dfmod.even", " └── dfmod.odd"]
    # a --parent alone finds the parent's flow in the database
    third = json.loads(net.cli("task", "run", "-s", "even", "-d", '"3"', "--parent", second["id"], "--chain"))
    assert third["tracking"] == tracking


def test_plug_added_while_workers_run_is_used_and_one_deleted_is_not(net: Net):
    """A worker re-reads plugs at most every 2 s; the plug is gone again before the next test."""
    def forwarded() -> bool:
        start = net.chain("even", '"late"')
        try:
            return bool(wait_for(lambda: net.finished(start["tracking"], "odd"), 3, "the call to odd"))
        except WaitTimeout:
            return False

    net.cli("add", "plug", "-n", "even-odd", "-q", f"df{net.tag}", "-s", "even", "-t", "odd")
    try:
        wait_for(forwarded, timeout=30, what="the new plug to forward")
    finally:
        net.cli("delete", "plug", "-n", "even-odd")
    wait_for(lambda: not forwarded(), timeout=30, what="the deleted plug to forward no more")


def plug_ids_by_name(net: Net) -> dict[str, str]:
    with session_scope(net.db) as session:
        return {p.name: p.id for p in session.scalars(select(Plug))}
