"""``ls calls`` paging and ``ls call`` details on rows inserted directly (the runtime writes them)."""
from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from sqlalchemy import insert

from pyfi.db.engine import session_scope
from pyfi.db.models import Call, Event

BASE = dt.datetime(2021, 9, 13, 19, 0, 0)
DOCUMENTED_HEADER = ["Page", "Row", "Name", "ID", "Owner", "Last Updated", "Socket", "Started", "Finished", "State"]


def ok(run_cli, *args: str) -> str:
    result = run_cli(*args)
    assert result.exit_code == 0, (args, result.output)
    return result.stdout


def header(table: str) -> list[str]:
    line = next(line for line in table.splitlines() if line.startswith("|"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def body(table: str) -> list[list[str]]:
    lines = [line for line in table.splitlines() if line.startswith("|")][1:]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def tables(text: str) -> list[str]:
    """Split output into its prettytable blocks (and titles), in order."""
    blocks, current = [], []
    for line in text.splitlines():
        if line.startswith(("+", "|")):
            current.append(line)
        else:
            if current:
                blocks.append("\n".join(current))
                current = []
            blocks.append(line)
    if current:
        blocks.append("\n".join(current))
    return blocks


@pytest.fixture
def socket_id(db_url, run_cli) -> str:
    ok(run_cli, "add", "queue", "-n", "pyfi.queue1")
    # the original documentation's module, pyfi.processors.sample, would be part of pyfi itself: pyfi refuses that
    ok(run_cli, "add", "processor", "-n", "proc1", "-m", "processors.sample", "-g", "https://github.com/a/b")
    ok(run_cli, "add", "socket", "-n", "sock1", "-q", "pyfi.queue1", "-pn", "proc1", "-t", "do_something")
    return json.loads(ok(run_cli, "ls", "socket", "-n", "sock1", "--json"))["id"]


def call_row(i: int, **extra) -> dict:
    at = BASE + dt.timedelta(seconds=30 * i)
    name = "processors.sample.do_something" if i % 2 else "processors.sample.do_this"
    row = {"id": str(uuid.uuid4()), "name": name, "owner": "postgres", "state": "finished", "started": at,
           "finished": at + dt.timedelta(milliseconds=30), "created": at, "lastupdated": at + dt.timedelta(milliseconds=31)}
    row.update(extra)
    return row


@pytest.fixture
def many_calls(db_url, socket_id) -> list[dict]:
    rows = [call_row(i, socket_id=socket_id if i % 2 else None) for i in range(3830)]
    with session_scope(db_url) as session:
        session.execute(insert(Call), rows)
    return rows


def test_ls_calls_pages_3830_records_like_the_documentation(many_calls, run_cli):
    newest_first = many_calls[::-1]
    out = ok(run_cli, "ls", "calls")
    assert header(out) == DOCUMENTED_HEADER
    assert out.rstrip().splitlines()[-1] == "Page 1 of 383 of 3830 total records"
    shown = body(out)
    assert [r[:2] for r in shown] == [["1", str(n)] for n in range(1, 11)]
    assert [r[3] for r in shown] == [c["id"] for c in newest_first[:10]]
    first = shown[0]
    assert first[2] == newest_first[0]["name"] and first[4] == "postgres" and first[9] == "finished"
    assert first[5] == str(newest_first[0]["lastupdated"]) and first[7] == str(newest_first[0]["started"])
    assert first[8] == str(newest_first[0]["finished"])
    assert first[6] == "processors.sample.do_something"  # the socket's task
    assert shown[1][6] == "processors.sample.do_this"  # no socket: the call's name

    out = ok(run_cli, "ls", "calls", "-r", "7", "-p", "2")
    assert out.rstrip().splitlines()[-1] == "Page 2 of 548 of 3830 total records"
    shown = body(out)
    assert [r[:2] for r in shown] == [["2", str(n)] for n in range(1, 8)]
    assert [r[3] for r in shown] == [c["id"] for c in newest_first[7:14]]

    out = ok(run_cli, "ls", "calls", "--page", "2", "--rows", "5", "--ascend")
    assert [r[3] for r in body(out)] == [c["id"] for c in many_calls[5:10]]
    assert out.rstrip().endswith("Page 2 of 766 of 3830 total records")

    last = ok(run_cli, "ls", "calls", "-p", "383")
    assert [r[3] for r in body(last)] == [c["id"] for c in newest_first[3820:]]

    past = run_cli("ls", "calls", "-p", "384")
    assert past.exit_code == 2 and "Traceback" not in past.output
    assert "page 384 does not exist: there are 383 pages" in past.stderr

    data = json.loads(ok(run_cli, "ls", "calls", "-a", "-r", "3", "--json"))
    assert (data["page"], data["pages"], data["total"]) == (1, 1277, 3830)
    assert [r["id"] for r in data["rows"]] == [c["id"] for c in many_calls[:3]]
    assert data["rows"][0]["state"] == "finished" and data["rows"][0]["started"] == many_calls[0]["started"].isoformat()


def insert_flow(url: str, socket_id: str) -> dict[str, str]:
    """A three-call chain one -> two -> three with one tracking id, plus an unrelated call."""
    tracking, other = str(uuid.uuid4()), str(uuid.uuid4())
    one = call_row(1, name="pyfi.flow.step_one", tracking=tracking, socket_id=socket_id, taskparent=None)
    two = call_row(2, name="pyfi.flow.step_two", tracking=tracking, parent=one["id"], taskparent=one["id"])
    three = call_row(3, name="pyfi.flow.step_three", tracking=tracking, parent=two["id"], taskparent=two["id"])
    stray = call_row(4, name="pyfi.flow.stray", tracking=other)
    # events inserted out of order; ``ls call`` must show them in the order they happened
    at = two["started"]
    events = [
        {"name": "postrun", "call_id": two["id"], "owner": "postgres", "note": "Postrun for task",
         "created": at + dt.timedelta(milliseconds=40), "lastupdated": at + dt.timedelta(milliseconds=40)},
        {"name": "received", "call_id": two["id"], "owner": "postgres", "note": "Received task pyfi.flow.step_two",
         "created": at - dt.timedelta(milliseconds=3), "lastupdated": at - dt.timedelta(milliseconds=3)},
        {"name": "prerun", "call_id": two["id"], "owner": "postgres", "note": "Prerun for task pyfi.flow.step_two",
         "created": at + dt.timedelta(milliseconds=27), "lastupdated": at + dt.timedelta(milliseconds=27)},
    ]
    with session_scope(url) as session:
        session.execute(insert(Call), [three, stray, one, two])
        session.execute(insert(Event), [dict(e, id=str(uuid.uuid4())) for e in events])
    return {"one": one["id"], "two": two["id"], "three": three["id"], "stray": stray["id"], "tracking": tracking}


def test_ls_call_shows_call_provenance_and_events(db_url, socket_id, run_cli):
    ids = insert_flow(db_url, socket_id)
    out = ok(run_cli, "ls", "call", "--id", ids["two"])
    blocks = tables(out)
    assert [b for b in blocks if not b.startswith("+")] == ["Provenance", "Events"]
    call_table, _, provenance, _, events = blocks
    assert header(call_table) == DOCUMENTED_HEADER[2:]
    assert [(r[0], r[1], r[2], r[7]) for r in body(call_table)] == [("pyfi.flow.step_two", ids["two"], "postgres", "finished")]
    assert header(provenance) == ["Task", "Task Parent", "Flow Parent", "Tracking", "Plug"]  # the documented ones, then two
    assert body(provenance) == [[ids["two"], ids["one"], ids["one"], ids["tracking"], "None"]]
    assert header(events) == ["Name", "ID", "Owner", "Last Updated", "Note", "Worker"]  # the documented ones, then one
    assert [(r[0], r[4]) for r in body(events)] == [
        ("received", "Received task pyfi.flow.step_two"),
        ("prerun", "Prerun for task pyfi.flow.step_two"),
        ("postrun", "Postrun for task"),
    ]
    root = tables(ok(run_cli, "ls", "call", "--id", ids["one"]))
    assert body(root[2]) == [[ids["one"], "None", "None", ids["tracking"], "None"]]
    assert body(root[4]) == []  # no events recorded for it

    data = json.loads(ok(run_cli, "ls", "call", "--id", ids["two"], "--json"))
    assert data["id"] == ids["two"] and data["parent"] == ids["one"]
    assert [e["name"] for e in data["events"]] == ["received", "prerun", "postrun"]
    by_name = json.loads(ok(run_cli, "ls", "call", "-n", "pyfi.flow.step_three", "--json"))
    assert by_name["id"] == ids["three"]


def test_ls_call_tree_graph_and_flow(db_url, socket_id, run_cli):
    ids = insert_flow(db_url, socket_id)
    tree = ok(run_cli, "ls", "call", "--id", ids["one"], "--tree").rstrip("\n").splitlines()
    assert len(tree) == 3 and tree[0] == "pyfi.flow.step_one"
    assert "└" in tree[1] and tree[1].rstrip().endswith("pyfi.flow.step_two")
    assert "└" in tree[2] and tree[2].rstrip().endswith("pyfi.flow.step_three")
    assert tree[2].index("└") > tree[1].index("└")  # nested one level deeper
    middle = ok(run_cli, "ls", "call", "--id", ids["two"], "-t").rstrip("\n").splitlines()
    assert middle[0] == "pyfi.flow.step_two" and len(middle) == 2 and "step_three" in middle[1]
    graph = ok(run_cli, "ls", "call", "--id", ids["three"], "--graph").rstrip("\n").splitlines()
    assert graph == tree  # the whole flow, drawn from its root

    flow = ok(run_cli, "ls", "call", "--id", ids["three"], "--flow")
    assert [r[1] for r in body(flow)] == [ids["one"], ids["two"], ids["three"]]
    assert ids["stray"] not in flow
    flow_json = json.loads(ok(run_cli, "ls", "call", "--id", ids["one"], "-f", "--json"))
    assert [c["id"] for c in flow_json] == [ids["one"], ids["two"], ids["three"]]
    assert {c["tracking"] for c in flow_json} == {ids["tracking"]}


def test_ls_call_errors(db_url, run_cli):
    missing = run_cli("ls", "call", "--id", "nope")
    assert missing.exit_code == 2 and "no call with id 'nope'" in missing.stderr
    unnamed = run_cli("ls", "call")
    assert unnamed.exit_code == 2 and "give --id ID or -n/--name NAME" in unnamed.stderr
    unknown = run_cli("ls", "call", "-n", "pyfi.nothing")
    assert unknown.exit_code == 2 and "no call named 'pyfi.nothing'" in unknown.stderr
    empty = ok(run_cli, "ls", "calls")
    assert header(empty) == DOCUMENTED_HEADER and body(empty) == []
    assert empty.rstrip().endswith("Page 1 of 1 of 0 total records")
    for bad in (("-p", "0"), ("-r", "0"), ("-p", "2")):
        result = run_cli("ls", "calls", *bad)
        assert result.exit_code == 2 and "Traceback" not in result.output, bad


def test_paging_is_stable_when_calls_share_a_timestamp(db_url, run_cli):
    """A batch of calls recorded in one transaction can share ``lastupdated``: no page may repeat or skip one."""
    rows = [call_row(0, name=f"pyfi.batch.c{i:03d}") for i in range(100)]
    with session_scope(db_url) as session:
        session.execute(insert(Call), rows)
    for order in ((), ("-a",)):
        seen = []
        for page in range(1, 11):
            data = json.loads(ok(run_cli, "ls", "calls", "-p", str(page), "--json", *order))
            seen += [r["id"] for r in data["rows"]]
        assert len(seen) == 100 and set(seen) == {r["id"] for r in rows}, order


def test_after_walks_the_listing_by_key_as_the_pages_do(db_url, run_cli):
    """``--after ID`` (a page's ``next``) continues where a page ended, ties included, with no OFFSET."""
    rows = [call_row(i // 7, name=f"pyfi.batch.c{i:03d}") for i in range(60)]  # runs of 7 share a timestamp
    with session_scope(db_url) as session:
        session.execute(insert(Call), rows)
    for order in ((), ("-a",)):
        numbered = [r["id"] for page in range(1, 7)
                    for r in json.loads(ok(run_cli, "ls", "calls", "-r", "11", "-p", str(page), "--json", *order))["rows"]]
        walked, after = [], []
        while True:
            data = json.loads(ok(run_cli, "ls", "calls", "-r", "11", "--json", *order, *after))
            walked += [r["id"] for r in data["rows"]]
            if data["next"] is None:
                break
            after = ["--after", data["next"]]
        assert walked == numbered and len(set(walked)) == 60, order
    gone = run_cli("ls", "calls", "--after", "no-such-call")
    assert gone.exit_code == 2 and "no row with id 'no-such-call' to list after" in gone.stderr


@pytest.mark.parametrize("db_kind", ["postgres"], indirect=True)  # (SQLite counts exactly at any size)
def test_a_large_listing_shows_an_estimated_total(db_url, many_calls, run_cli, monkeypatch):
    from pyfi.core import paging

    monkeypatch.setattr(paging, "EXACT_UP_TO", 100)
    with session_scope(db_url) as session:  # (what autovacuum does to a table that has grown)
        session.execute(__import__("sqlalchemy").text("ANALYZE calls"))
    out = ok(run_cli, "ls", "calls")
    assert " of about " in out.rstrip().splitlines()[-1] and len(body(out)) == 10
    data = json.loads(ok(run_cli, "ls", "calls", "--json"))
    assert data["exact"] is False and data["total"] > 100 and data["next"] == data["rows"][-1]["id"]
