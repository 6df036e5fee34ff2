"""Dataflow without workers, on both databases: join bookkeeping (races included),
provenance views of big flows, ``ls calls`` filters, shell-chain envelopes."""
from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid

import pytest
from sqlalchemy import func, insert, select

from pyfi.core import chain, provenance
from pyfi.core.access import Actor
from pyfi.core.calls import parse_since
from pyfi.db.engine import session_scope
from pyfi.db.models import Call, JoinArrival, call_parents
from pyfi.errors import InvalidInput
from pyfi.worker import joins

BASE = dt.datetime(2024, 5, 1, 12, 0, 0)


def ok(run_cli, *args: str, input: str | None = None) -> str:
    result = run_cli(*args, input=input)
    assert result.exit_code == 0, (args, result.output)
    return result.stdout


@pytest.fixture
def join_socket(db_url, run_cli) -> str:
    ok(run_cli, "add", "queue", "-n", "q")
    ok(run_cli, "add", "processor", "-n", "p", "-m", "mod", "-g", "https://example.com/r.git")
    ok(run_cli, "add", "socket", "-n", "d", "-q", "q", "-pn", "p", "-t", "d", "--wait")
    return json.loads(ok(run_cli, "ls", "socket", "-n", "d", "--json"))["id"]


class Fired:
    """A stand-in for the broker send: records what a join fired."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list]] = []
        self.lock = threading.Lock()

    def sender(self, tracking: str):
        def send(args: list, parent: str) -> list[str]:
            call_id = str(uuid.uuid4())
            with self.lock:
                self.calls.append((tracking, args))
            return [call_id]

        return send


def arrive(url: str, socket_id: str, fired: Fired, tracking: str, position: int, value, call_id: str | None = None):
    with session_scope(url) as session:
        return joins.arrive(session, socket_id=socket_id, positions=(0, 1), tracking=tracking, position=position,
                            call_id=call_id or str(uuid.uuid4()), value=value, send=fired.sender(tracking))


def test_join_waits_for_every_position_then_clears(db_url, join_socket):
    fired, flow_a, flow_b = Fired(), str(uuid.uuid4()), str(uuid.uuid4())
    src_c = str(uuid.uuid4())
    assert arrive(db_url, join_socket, fired, flow_a, 1, {"y": [1, 2]}, src_c) is None
    assert arrive(db_url, join_socket, fired, flow_b, 0, "b0") is None  # another flow: never mixes
    assert arrive(db_url, join_socket, fired, flow_a, 1, "again") is None  # position taken: dropped, logged
    src_b = str(uuid.uuid4())
    sent = arrive(db_url, join_socket, fired, flow_a, 0, "x0", src_b)
    assert fired.calls == [(flow_a, ["x0", {"y": [1, 2]}])]  # JSON values, in position order
    with session_scope(db_url) as session:
        assert [(a.tracking, a.position) for a in session.scalars(select(JoinArrival))] == [(flow_b, 0)]
        parents = session.execute(select(call_parents.c.parent_id).where(call_parents.c.call_id == sent[0])).scalars()
        assert set(parents) == {src_b, src_c}
    arrive(db_url, join_socket, fired, flow_b, 1, "b1")
    assert fired.calls[1] == (flow_b, ["b0", "b1"])
    arrive(db_url, join_socket, fired, flow_a, 0, "round2")  # a cleared join starts a new round
    assert len(fired.calls) == 2
    with session_scope(db_url) as session:
        assert session.scalar(select(func.count()).select_from(JoinArrival)) == 1


def test_join_race_fires_exactly_once_per_flow(db_url, join_socket):
    """Both positions of each flow arrive at the same moment from two threads (two connections)."""
    fired, flows = Fired(), [str(uuid.uuid4()) for _ in range(15)]
    errors: list[BaseException] = []

    def side(tracking: str, position: int, barrier: threading.Barrier) -> None:
        try:
            barrier.wait(timeout=10)
            arrive(db_url, join_socket, fired, tracking, position, f"{tracking}:{position}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    for tracking in flows:
        barrier = threading.Barrier(2)
        threads = [threading.Thread(target=side, args=(tracking, p, barrier)) for p in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    assert not errors, errors
    assert sorted(t for t, _ in fired.calls) == sorted(flows)  # once per flow
    assert all(args == [f"{t}:0", f"{t}:1"] for t, args in fired.calls)  # never mixed
    with session_scope(db_url) as session:
        assert session.scalar(select(func.count()).select_from(JoinArrival)) == 0


# -- provenance of big flows ------------------------------------------------------
def flow_rows(size: int, tracking: str) -> tuple[list[dict], list[dict]]:
    """A root, 10 branches of chains, every 10th call of a branch joined with the next branch."""
    root = {"id": tracking, "name": "flow.root", "tracking": tracking, "state": "finished",
            "started": BASE, "created": BASE, "lastupdated": BASE}
    rows, extra, per_branch = [root], [], (size - 1) // 10
    last_of: dict[int, str] = {}
    for step in range(per_branch):
        for branch in range(10):
            at = BASE + dt.timedelta(milliseconds=10 * (step * 10 + branch + 1))
            parent = last_of.get(branch, tracking)
            call_id = str(uuid.uuid4())
            rows.append({"id": call_id, "name": f"flow.b{branch}", "tracking": tracking, "parent": parent,
                         "state": "finished", "started": at, "created": at, "lastupdated": at})
            if step % 10 == 9 and branch > 0:
                extra += [{"call_id": call_id, "parent_id": parent}, {"call_id": call_id, "parent_id": last_of[branch - 1]}]
            last_of[branch] = call_id
    return rows, extra


def test_graph_flow_and_tree_of_1000_calls_are_drawn_whole(db_url, db_kind, run_cli):
    tracking = str(uuid.uuid4())
    rows, extra = flow_rows(1001, tracking)
    noise, _ = flow_rows(1001, str(uuid.uuid4()))
    with session_scope(db_url) as session:
        session.execute(insert(Call), rows + noise)
        session.execute(insert(call_parents), extra)
    leaf = rows[-1]["id"]
    timings = {}
    for flag in ("--graph", "--flow", "--tree"):
        start = time.perf_counter()
        out = ok(run_cli, "ls", "call", "--id", leaf if flag != "--tree" else tracking, flag)
        timings[flag] = time.perf_counter() - start
        if flag == "--flow":
            assert sum("flow.b" in line for line in out.splitlines()) == 1000 and "flow.root" in out
        else:
            lines = out.rstrip("\n").splitlines()
            assert lines[0] == "flow.root"
            assert sum("[join]" in line for line in lines) == len(extra) // 2
            assert sum("[join, see above]" in line for line in lines) == len(extra) // 2
            assert len(lines) == 1001 + len(extra) // 2  # every call once, plus one reference per extra parent
    print(f"\n{db_kind}: flow of 1001 calls: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in timings.items()))


def test_deep_chain_draws_without_recursion_error(db_url):
    tracking = str(uuid.uuid4())
    rows, parent = [], None
    for i in range(1500):
        call_id = tracking if i == 0 else str(uuid.uuid4())
        at = BASE + dt.timedelta(milliseconds=i)
        rows.append({"id": call_id, "name": f"chain.s{i}", "tracking": tracking, "parent": parent, "state": "finished",
                     "started": at, "created": at, "lastupdated": at})
        parent = call_id
    with session_scope(db_url) as session:
        session.execute(insert(Call), rows)
        call = session.get(Call, tracking)
        root = provenance.forward_tree(session, Actor("admin"), call)
        assert provenance.depth(root) == 1500
    from pyfi.cli.ls_calls import draw_tree

    drawn = draw_tree(root).splitlines()
    assert len(drawn) == 1500 and drawn[-1].endswith("chain.s1499")


# -- ls calls filters ---------------------------------------------------------------
def test_ls_calls_filters(db_url, run_cli, join_socket):
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    flow = str(uuid.uuid4())
    rows = []
    for i in range(30):
        at = now - dt.timedelta(minutes=i * 10)
        rows.append({"id": str(uuid.uuid4()), "name": f"m.f{i % 3}", "state": "failed" if i % 5 == 0 else "finished",
                     "socket_id": join_socket if i % 3 == 0 else None, "tracking": flow if i < 4 else str(uuid.uuid4()),
                     "started": at, "created": at, "lastupdated": at})
    with session_scope(db_url) as session:
        session.execute(insert(Call), rows)

    def ids(*args: str) -> list[str]:
        data = json.loads(ok(run_cli, "ls", "calls", "--json", "-r", "100", *args))
        return [r["id"] for r in data["rows"]]

    assert ids("--socket", "d") == [r["id"] for r in rows if r["socket_id"]]
    assert ids("--state", "failed") == [r["id"] for r in rows if r["state"] == "failed"]
    assert ids("--since", "35m") == [r["id"] for r in rows[:4]]
    assert ids("--since", (now - dt.timedelta(minutes=25)).isoformat()) == [r["id"] for r in rows[:3]]
    assert ids("--tracking", flow) == [r["id"] for r in rows[:4]]
    assert ids("--tracking", flow, "--state", "failed", "-s", "d") == [rows[0]["id"]]
    paged = ok(run_cli, "ls", "calls", "--state", "finished", "-r", "5", "-p", "2")
    assert paged.rstrip().endswith("Page 2 of 5 of 24 total records")
    for bad, message in ((("--since", "soon"), "--since 'soon' is neither"), (("--socket", "nope"), "no socket named"),
                         (("--state", "odd"), "Invalid value for '--state'")):
        result = run_cli("ls", "calls", *bad)
        assert result.exit_code == 2 and message in result.stderr, (bad, result.output)


def test_parse_since() -> None:
    now = dt.datetime(2024, 5, 1, 12, 0, 0)
    assert parse_since("10m", now) == dt.datetime(2024, 5, 1, 11, 50)
    assert parse_since("2h", now) == dt.datetime(2024, 5, 1, 10, 0)
    assert parse_since(" 1D ", now) == dt.datetime(2024, 4, 30, 12, 0)
    assert parse_since("2024-05-01T14:00+02:00") == dt.datetime(2024, 5, 1, 12, 0)  # to naive UTC
    assert parse_since("2024-05-01 12:00") == dt.datetime(2024, 5, 1, 12, 0)
    with pytest.raises(InvalidInput):
        parse_since("10 minutes")


def test_chain_envelope_round_trip_and_plain_data() -> None:
    call_id, tracking = str(uuid.uuid4()), str(uuid.uuid4())
    text = chain.envelope(call_id, tracking, {"a": [1, "x"]})
    link = chain.unwrap(json.loads(text))
    assert (link.data, link.parent, link.tracking) == ({"a": [1, "x"]}, call_id, tracking)
    for plain in ("hi", 3, None, {"call": call_id, "tracking": tracking, "result": 1},
                  {"pyfi": "chain", "call": "not-an-id", "tracking": tracking, "result": 1}):
        assert chain.unwrap(plain) == chain.Link(plain)


def test_tree_drawing_matches_asciitree_left_aligned() -> None:
    import random

    from asciitree import LeftAligned
    from asciitree.drawing import BOX_LIGHT, BoxStyle
    from asciitree.traversal import AttributeTraversal

    from pyfi.cli.ls_calls import draw_tree

    class Labels(AttributeTraversal):
        def get_text(self, node):
            return node.label

    rng = random.Random(7)
    for _ in range(20):
        nodes = [provenance.Node("n0", "0")]
        for i in range(1, rng.randint(1, 60)):
            parent = rng.choice(nodes)
            nodes.append(provenance.Node(f"n{i}", str(i)))
            parent.children.append(nodes[-1])
        expected = LeftAligned(draw=BoxStyle(gfx=BOX_LIGHT, horiz_len=2), traverse=Labels())(nodes[0])
        assert draw_tree(nodes[0]) == expected
