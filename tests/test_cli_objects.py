"""Object commands (add/update/delete/ls) as a user sees them, on SQLite and PostgreSQL."""
from __future__ import annotations

import json
import re

import pytest
from clihelp import GIT, PLURALS, error, names, ok, rows

ID_LINE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}:(?P<name>[^:]+):"
                     r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


def one(run_cli, kind: str, name: str) -> dict:
    return json.loads(ok(run_cli, "ls", kind, "-n", name, "--json"))


def counts(run_cli) -> dict[str, int]:
    return {plural: len(rows(run_cli, plural)) for plural in PLURALS}


def make_flow(run_cli) -> None:
    """q1, processor p1 with sockets s1 -> s2 wired by plug pl1."""
    ok(run_cli, "add", "queue", "-n", "q1")
    ok(run_cli, "add", "processor", "-n", "p1", "-m", "pkg.sample", "-g", GIT)
    ok(run_cli, "add", "socket", "-n", "s1", "-q", "q1", "-pn", "p1", "-t", "do_something")
    ok(run_cli, "add", "socket", "-n", "s2", "-q", "q1", "-pn", "p1", "-t", "do_this")
    ok(run_cli, "add", "plug", "-n", "pl1", "-q", "q1", "-s", "s1", "-t", "s2")


# --- queues ------------------------------------------------------------------

def test_queue_add_ls_update_delete(db_url, run_cli):
    out = ok(run_cli, "add", "queue", "-n", "q1")
    assert ID_LINE.match(out.strip()).group("name") == "q1"
    assert one(run_cli, "queue", "q1")["type"] == "direct"
    ok(run_cli, "add", "queue", "-n", "q2", "-t", "fanout")
    table = ok(run_cli, "ls", "queues")
    assert re.search(r"\|\s+Page\s+\|\s+Row\s+\|\s+Name\s+\|\s+ID\s+\|\s+Owner\s+\|\s+Last Updated\s+\|\s+Type", table)
    assert "fanout" in table and "direct" in table
    assert table.rstrip().endswith("Page 1 of 1 of 2 total records")
    assert "Updated queue 'q1'" in ok(run_cli, "update", "queue", "-n", "q1", "-t", "topic")
    assert one(run_cli, "queue", "q1")["type"] == "topic"
    ident = one(run_cli, "queue", "q2")["id"]
    ok(run_cli, "update", "queue", "--id", ident, "--rename", "q3")
    assert names(run_cli, "queues") == {"q1", "q3"}
    assert json.loads(ok(run_cli, "ls", "queue", "--id", ident, "--json"))["name"] == "q3"
    assert "Deleted queue 'q1'" in ok(run_cli, "delete", "queue", "-n", "q1")
    ok(run_cli, "delete", "queue", "--id", ident)
    assert names(run_cli, "queues") == set()


def test_update_needs_a_change_and_a_known_object(db_url, run_cli):
    ok(run_cli, "add", "queue", "-n", "orders")
    assert "nothing to update" in error(run_cli, 2, "update", "queue", "-n", "orders")
    assert "did you mean 'orders'?" in error(run_cli, 2, "update", "queue", "-n", "order", "-t", "topic")
    assert "none was named" in error(run_cli, 2, "delete", "queue")
    assert "no queue with id 'nope'" in error(run_cli, 2, "ls", "queue", "--id", "nope")


# --- processors, sockets, plugs ---------------------------------------------

def test_processor_takes_every_documented_option(db_url, run_cli):
    out = ok(run_cli, "add", "processor", "-n", "p1", "-m", "pkg.sample", "-h", "node7", "-w", "3", "-r", "2",
             "-g", GIT, "-c", "abc123", "-rs", "running", "-b", "-br", "develop")
    assert ID_LINE.match(out.strip())
    data = one(run_cli, "processor", "p1")
    assert {k: data[k] for k in ("module", "hostname", "workers", "retries", "gitrepo", "commit",
                                 "requested_status", "beat", "branch")} == {
        "module": "pkg.sample", "hostname": "node7", "workers": 3, "retries": 2, "gitrepo": GIT,
        "commit": "abc123", "requested_status": "running", "beat": True, "branch": "develop"}
    ok(run_cli, "add", "processor", "-n", "p2", "-m", "pkg.other", "-g", GIT)
    defaults = one(run_cli, "processor", "p2")
    assert (defaults["workers"], defaults["retries"], defaults["beat"], defaults["requested_status"]) == (
        1, 0, False, "ready")
    ok(run_cli, "update", "processor", "-n", "p1", "-w", "5", "--no-beat", "-br", "main", "--rename", "p9")
    data = one(run_cli, "processor", "p9")
    assert (data["workers"], data["beat"], data["branch"], data["hostname"]) == (5, False, "main", "node7")
    table = ok(run_cli, "ls", "processors")
    assert "p9" in table and "p2" in table and "Page 1 of 1 of 2 total records" in table
    ok(run_cli, "delete", "processor", "-n", "p2")
    assert names(run_cli, "processors") == {"p9"}


@pytest.mark.parametrize("args,needle", [
    (("-w", "0"), "Invalid value for '-w' / '--workers'"),
    (("-r", "-1"), "Invalid value for '-r' / '--retries'"),
    (("-m", "not a module"), "invalid module path 'not a module'"),
])
def test_processor_bad_values_exit_2(db_url, run_cli, args, needle):
    base = {"-n": "p1", "-m": "pkg.sample", "-g": GIT}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    argv = [x for pair in base.items() for x in pair]
    assert needle in error(run_cli, 2, "add", "processor", *argv)
    assert names(run_cli, "processors") == set()


@pytest.mark.parametrize("option,value", [("-g", GIT + "\n| 1 | 9 | FAKE-ROW"), ("-h", "n9\x1b[31mRED"),
                                          ("-br", "main\x1b[2J"), ("--requirements", "x\ry"), ("-br", "main\u202e")])
def test_processor_text_with_control_characters_is_refused(db_url, run_cli, option, value):
    needle = "it holds the control or invisible character"
    assert needle in error(run_cli, 2, "add", "processor", "-n", "p1", "-m", "pkg.sample", "-g", GIT, option, value)
    assert names(run_cli, "processors") == set()
    ok(run_cli, "add", "processor", "-n", "p1", "-m", "pkg.sample", "-g", GIT)
    assert needle in error(run_cli, 2, "update", "processor", "-n", "p1", option, value)


def test_ls_shows_control_characters_from_outside_escaped(db_url, run_cli):
    from sqlalchemy import select

    from pyfi.db.engine import session_scope
    from pyfi.db.models import Call, Processor

    ok(run_cli, "add", "processor", "-n", "p1", "-m", "pkg.sample", "-g", GIT)
    with session_scope(db_url) as session:  # what an agent stored of git's output, what a worker took from the broker
        session.scalar(select(Processor).where(Processor.name == "p1")).error = "git: \x1b]0;pwned\x07\x1b[2J"
        session.add(Call(id="c1", name="amod.echo\x1b[2J\x1b[H\n| c2 | ALL OK", state="refused"))
    shown = {args: ok(run_cli, *args) for args in [("ls", "processors"), ("ls", "processor", "-n", "p1"),
                                                   ("ls", "calls"), ("ls", "call", "--id", "c1")]}
    for args, out in shown.items():
        assert not set(out) & {"\x1b", "\x07"}, args
    assert "git: \\x1b]0;pwned\\x07\\x1b[2J" in shown[("ls", "processor", "-n", "p1")]
    assert "amod.echo\\x1b[2J\\x1b[H\\n| c2 | ALL OK" in shown[("ls", "calls")]
    assert json.loads(ok(run_cli, "ls", "calls", "--json"))["rows"][0]["name"].startswith("amod.echo\x1b[2J")


def test_socket_and_plug_options_and_relations(db_url, run_cli):
    make_flow(run_cli)
    ok(run_cli, "add", "socket", "-n", "tick", "-q", "q1", "-pn", "p1", "-t", "do_tick", "-i", "30")
    tick = one(run_cli, "socket", "tick")
    assert (tick["processor"], tick["queue"], tick["task"], tick["interval"]) == ("p1", "q1", "pkg.sample.do_tick", 30)
    ok(run_cli, "add", "plug", "-n", "errs", "-q", "q1", "-s", "s2", "-t", "tick", "--type", "ERROR", "--position", "1")
    errs = one(run_cli, "plug", "errs")
    assert (errs["type"], errs["source"], errs["target"], errs["queue"], errs["position"]) == (
        "ERROR", "s2", "tick", "q1", 1)
    assert one(run_cli, "plug", "pl1")["type"] == "RESULT" and one(run_cli, "plug", "pl1")["position"] == 0
    tasks = {(t["module"], t["name"]) for t in rows(run_cli, "tasks")}
    assert tasks == {("pkg.sample", "do_something"), ("pkg.sample", "do_this"), ("pkg.sample", "do_tick")}
    assert "pkg.sample.do_tick" in ok(run_cli, "ls", "tasks")

    shown = ok(run_cli, "ls", "processor", "-n", "p1")
    sockets_part = shown.split("Sockets", 1)[1]
    assert all(s in sockets_part for s in ("s1", "s2", "tick", "pkg.sample.do_this"))
    assert set(s["name"] for s in one(run_cli, "processor", "p1")["sockets"]) == {"s1", "s2", "tick"}
    socket = one(run_cli, "socket", "s2")
    assert [p["name"] for p in socket["plugs_in"]] == ["pl1"] and [p["name"] for p in socket["plugs_out"]] == ["errs"]
    queue = one(run_cli, "queue", "q1")
    assert {s["name"] for s in queue["sockets"]} == {"s1", "s2", "tick"}
    assert {p["name"] for p in queue["plugs"]} == {"pl1", "errs"}

    ok(run_cli, "update", "socket", "-n", "tick", "-i", "60", "-t", "do_tock")
    tick = one(run_cli, "socket", "tick")
    assert (tick["interval"], tick["task"]) == (60, "pkg.sample.do_tock")
    ok(run_cli, "update", "plug", "-n", "errs", "--type", "result", "--position", "2")
    assert (one(run_cli, "plug", "errs")["type"], one(run_cli, "plug", "errs")["position"]) == ("RESULT", 2)


@pytest.mark.parametrize("args,needle", [
    (("add", "socket", "-n", "s9", "-q", "q1", "-pn", "nope", "-t", "f"), "no processor named 'nope'"),
    (("add", "socket", "-n", "s9", "-q", "nowhere", "-pn", "p1", "-t", "f"), "no queue named 'nowhere'"),
    (("add", "plug", "-n", "pl9", "-q", "q1", "-s", "s1", "-t", "ghost"), "no socket named 'ghost'"),
    (("add", "plug", "-n", "pl9", "-q", "q1", "-s", "ghost", "-t", "s2"), "no socket named 'ghost'"),
    (("add", "plug", "-n", "pl9", "-q", "nowhere", "-s", "s1", "-t", "s2"), "no queue named 'nowhere'"),
    (("add", "plug", "-n", "pl9", "-q", "q1", "-s", "s1", "-t", "s1"), "cannot connect a socket to itself"),
    (("add", "deployment", "-n", "d9", "-p", "nope", "-h", "host"), "no processor named 'nope'"),
    (("add", "agent", "-n", "a9", "--node", "nope"), "no node named 'nope'"),
    (("add", "worker", "-n", "w9", "-a", "nope", "-p", "p1"), "no agent named 'nope'"),
    (("update", "socket", "-n", "s1", "-q", "nowhere"), "no queue named 'nowhere'"),
    (("update", "plug", "-n", "pl1", "-t", "ghost"), "no socket named 'ghost'"),
])
def test_referential_errors_change_nothing(db_url, run_cli, args, needle):
    make_flow(run_cli)
    before = counts(run_cli)
    line = error(run_cli, 2, *args)
    assert needle in line
    assert counts(run_cli) == before
    assert one(run_cli, "socket", "s1")["queue"] == "q1" and one(run_cli, "plug", "pl1")["target"] == "s2"


def test_unknown_names_suggest_close_matches(db_url, run_cli):
    make_flow(run_cli)
    assert "did you mean 'p1'?" in error(run_cli, 2, "add", "socket", "-n", "s3", "-q", "q1", "-pn", "p", "-t", "f")
    assert "did you mean 'q1'?" in error(run_cli, 2, "ls", "queue", "-n", "q")
    both = error(run_cli, 2, "delete", "socket", "-n", "s")
    assert "did you mean" in both and "'s1'" in both and "'s2'" in both
    far = error(run_cli, 2, "ls", "processor", "-n", "completely-different")
    assert "list them with `pyfi ls processors`" in far


@pytest.mark.parametrize("args,needle", [
    (("add", "queue", "-n", "q1"), "queue 'q1' already exists"),
    (("add", "processor", "-n", "p1", "-m", "x.y", "-g", GIT), "processor 'p1' already exists"),
    (("add", "socket", "-n", "s1", "-q", "q1", "-pn", "p1", "-t", "f"), "socket 's1' already exists"),
    (("add", "plug", "-n", "pl1", "-q", "q1", "-s", "s2", "-t", "s1"), "plug 'pl1' already exists"),
    (("add", "user", "-n", "admin", "-e", "a@b", "-p", "pw"), "user 'admin' already exists"),
    (("update", "queue", "-n", "q2", "--rename", "q1"), "conflicts with an existing object"),
])
def test_duplicates_exit_2(db_url, run_cli, args, needle):
    make_flow(run_cli)
    ok(run_cli, "add", "queue", "-n", "q2")
    before = counts(run_cli)
    assert needle in error(run_cli, 2, *args)
    assert counts(run_cli) == before


@pytest.mark.parametrize("args,needle", [
    (("add", "processor", "-n", "p9", "-m", "m.x", "-g", GIT, "-rs", "bogus"), "unknown requested status 'bogus'"),
    (("add", "plug", "-n", "pl9", "-q", "q1", "-s", "s1", "-t", "s2", "--type", "X"), "Invalid value for '--type'"),
    (("add", "queue", "-n", "q9", "-t", "bogus"), "Invalid value for '-t' / '--type'"),
    (("add", "scheduler", "-n", "sc9", "-s", "FASTEST"), "Invalid value for '-s' / '--strategy'"),
    (("update", "processor", "-n", "p1", "-rs", "sleeping"), "unknown requested status 'sleeping'"),
    (("add", "privilege", "-u", "admin", "-n", "ADD_PROCESOR"), "unknown right 'ADD_PROCESOR' (did you mean ADD_PROCESSOR"),
])
def test_bad_enum_values_exit_2(db_url, run_cli, args, needle):
    make_flow(run_cli)
    before = counts(run_cli)
    assert needle in error(run_cli, 2, *args)
    assert counts(run_cli) == before
    assert one(run_cli, "processor", "p1")["requested_status"] == "ready"


# --- deletes -----------------------------------------------------------------

def test_deleting_a_processor_removes_its_sockets_and_plugs(db_url, run_cli):
    make_flow(run_cli)
    ok(run_cli, "add", "processor", "-n", "p2", "-m", "pkg.other", "-g", GIT)
    ok(run_cli, "add", "socket", "-n", "s3", "-q", "q1", "-pn", "p2", "-t", "do_other")
    ok(run_cli, "add", "plug", "-n", "into_p1", "-q", "q1", "-s", "s3", "-t", "s1")
    ok(run_cli, "add", "plug", "-n", "from_p1", "-q", "q1", "-s", "s2", "-t", "s3")
    ok(run_cli, "add", "socket", "-n", "s4", "-q", "q1", "-pn", "p2", "-t", "do_more")
    ok(run_cli, "add", "plug", "-n", "p2_only", "-q", "q1", "-s", "s3", "-t", "s4")
    assert "Deleted processor 'p1'" in ok(run_cli, "delete", "processor", "-n", "p1")
    assert names(run_cli, "processors") == {"p2"}
    assert names(run_cli, "sockets") == {"s3", "s4"}
    assert names(run_cli, "plugs") == {"p2_only"}


def test_deleting_a_queue_in_use_is_refused_naming_its_users(db_url, run_cli):
    make_flow(run_cli)
    line = error(run_cli, 1, "delete", "queue", "-n", "q1")
    assert "queue 'q1' is in use by plug pl1, socket s1, socket s2" in line
    assert names(run_cli, "queues") == {"q1"} and names(run_cli, "sockets") == {"s1", "s2"}
    ok(run_cli, "delete", "processor", "-n", "p1")
    ok(run_cli, "delete", "queue", "-n", "q1")
    assert names(run_cli, "queues") == set()


def test_delete_socket_and_plug(db_url, run_cli):
    make_flow(run_cli)
    ok(run_cli, "delete", "plug", "-n", "pl1")
    assert names(run_cli, "plugs") == set() and names(run_cli, "sockets") == {"s1", "s2"}
    ok(run_cli, "add", "plug", "-n", "pl2", "-q", "q1", "-s", "s1", "-t", "s2")
    ok(run_cli, "delete", "socket", "-n", "s2")
    assert names(run_cli, "sockets") == {"s1"} and names(run_cli, "plugs") == set()


# --- the other kinds ---------------------------------------------------------

def test_node_scheduler_deployment_network_agent_worker(db_url, run_cli):
    make_flow(run_cli)
    for args in (("node", "-n", "n1", "-h", "host1"), ("scheduler", "-n", "sch", "-s", "EFFICIENT", "-i", "7"),
                 ("deployment", "-n", "d1", "-p", "p1", "-h", "host1", "--cpus", "2"),
                 ("network", "-n", "net", "-d", "lab"), ("agent", "-n", "a1", "--node", "n1", "-p", "8010"),
                 ("worker", "-n", "w1", "-a", "a1", "-p", "p1", "--concurrency", "2")):
        assert ID_LINE.match(ok(run_cli, "add", *args).strip()), args
    assert one(run_cli, "node", "n1")["hostname"] == "host1"
    assert (one(run_cli, "scheduler", "sch")["strategy"], one(run_cli, "scheduler", "sch")["interval"]) == ("EFFICIENT", 7)
    deployment = one(run_cli, "deployment", "d1")
    assert (deployment["processor"], deployment["hostname"], deployment["cpus"]) == ("p1", "host1", 2)
    assert one(run_cli, "network", "net")["description"] == "lab"
    assert [a["name"] for a in one(run_cli, "node", "n1")["agents"]] == ["a1"]
    assert [w["name"] for w in one(run_cli, "agent", "a1")["workers"]] == ["w1"]
    p1 = one(run_cli, "processor", "p1")
    assert [w["name"] for w in p1["running_workers"]] == ["w1"] and p1["workers"] == 1  # relation keeps the count
    assert "Running workers" in ok(run_cli, "ls", "processor", "-n", "p1")

    ok(run_cli, "update", "node", "-n", "n1", "-h", "host2")
    ok(run_cli, "update", "scheduler", "-n", "sch", "-s", "balanced", "-i", "9")
    ok(run_cli, "update", "deployment", "-n", "d1", "--cpus", "4")
    ok(run_cli, "update", "network", "-n", "net", "-d", "prod")
    assert one(run_cli, "node", "n1")["hostname"] == "host2"
    assert (one(run_cli, "scheduler", "sch")["strategy"], one(run_cli, "scheduler", "sch")["interval"]) == ("BALANCED", 9)
    assert one(run_cli, "deployment", "d1")["cpus"] == 4
    assert one(run_cli, "network", "net")["description"] == "prod"
    for plural, name in (("nodes", "n1"), ("schedulers", "sch"), ("deployments", "d1"), ("networks", "net")):
        table = ok(run_cli, "ls", plural)
        assert name in table and "Page 1 of 1 of 1 total records" in table
    ok(run_cli, "delete", "node", "-n", "n1")  # its agents and their workers go with it
    assert names(run_cli, "agents") == set() and names(run_cli, "workers") == set()
    for kind, plural, name in (("scheduler", "schedulers", "sch"), ("deployment", "deployments", "d1"),
                               ("network", "networks", "net")):
        ok(run_cli, "delete", kind, "-n", name)
        assert names(run_cli, plural) == set()


def test_every_ls_prints_parseable_json(db_url, run_cli):
    make_flow(run_cli)
    for args in (("node", "-n", "n1"), ("agent", "-n", "a1", "--node", "n1"), ("worker", "-n", "w1", "-a", "a1", "-p", "p1"),
                 ("scheduler", "-n", "sch"), ("deployment", "-n", "d1", "-p", "p1", "-h", "h"), ("network", "-n", "net"),
                 ("role", "-n", "dev")):
        ok(run_cli, "add", *args)
    for plural in PLURALS:
        data = json.loads(ok(run_cli, "ls", plural, "--json"))
        assert set(data) == {"page", "pages", "total", "exact", "next", "rows"}, plural
        assert data["total"] == len(data["rows"]) and (data["total"] > 0 or plural == "calls"), plural
    for kind, name in (("queue", "q1"), ("processor", "p1"), ("socket", "s1"), ("plug", "pl1"), ("node", "n1"),
                       ("agent", "a1"), ("worker", "w1"), ("scheduler", "sch"), ("deployment", "d1"),
                       ("network", "net"), ("user", "admin"), ("role", "dev")):
        data = one(run_cli, kind, name)
        assert data["name"] == name and re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+", data["lastupdated"]), kind


def test_plural_listing_pages_with_the_documented_footer(db_url, run_cli):
    for i in range(12):
        ok(run_cli, "add", "queue", "-n", f"q{i:02d}")
    first = ok(run_cli, "ls", "queues")
    assert first.rstrip().endswith("Page 1 of 2 of 12 total records")
    assert first.count("| q") == 10 and "q11" in first and "q00" not in first  # newest first
    second = ok(run_cli, "ls", "queues", "-p", "2")
    assert second.rstrip().endswith("Page 2 of 2 of 12 total records") and second.count("| q") == 2
    assert "q00" in second and re.search(r"\|\s+2\s+\|\s+1\s+\|\s+q01\s+\|", second)
    oldest = ok(run_cli, "ls", "queues", "-a", "-r", "5", "-p", "3")
    assert oldest.rstrip().endswith("Page 3 of 3 of 12 total records")
    assert [r for r in re.findall(r"\|\s+(q\d\d)\s+\|", oldest)] == ["q10", "q11"]
    page = json.loads(ok(run_cli, "ls", "queues", "-a", "-r", "5", "--json"))
    assert (page["page"], page["pages"], page["total"]) == (1, 3, 12)
    assert [r["name"] for r in page["rows"]] == ["q00", "q01", "q02", "q03", "q04"]
    assert "there are 3 pages" in error(run_cli, 2, "ls", "queues", "-r", "5", "-p", "4")
    assert "--rows must be at least 1" in error(run_cli, 2, "ls", "queues", "-r", "0")


# --- users, roles, privileges -----------------------------------------------

def test_users_roles_and_privileges(db_url, db_kind, run_cli):
    added = ok(run_cli, "add", "user", "-n", "joe", "-e", "joe@xyz", "-p", "12345").strip().splitlines()
    echo = ["CREATE USER joe WITH PASSWORD '*****'"] if db_kind == "postgres" else []  # the documented line, masked
    assert added == echo + ['User "joe" added']
    prompted = run_cli("add", "user", input="ann\nann@xyz\nPa55-word\nPa55-word\n")
    assert prompted.exit_code == 0 and 'User "ann" added' in prompted.output
    assert "Pa55-word" not in prompted.output  # hidden input
    role_line = ok(run_cli, "add", "role", "-n", "developer").strip()
    assert ID_LINE.match(role_line).group("name") == "developer"
    assert ok(run_cli, "add", "privilege", "-u", "joe", "-n", "ADD_PROCESSOR").strip() == "Privilege added"
    assert ok(run_cli, "add", "privilege", "-r", "developer", "-n", "read").strip() == "Privilege added"
    assert 'Role "developer" given to "joe"' in ok(run_cli, "add", "role", "-n", "developer", "-u", "joe")

    shown = ok(run_cli, "ls", "user", "-n", "joe")
    head, rest = shown.split("Roles", 1)
    roles, privileges = rest.split("Privileges", 1)
    assert re.search(r"\|\s+Name\s+\|\s+ID\s+\|\s+Owner\s+\|\s+Email\s+\|", head) and "joe@xyz" in head
    assert "developer" in roles
    assert re.search(r"\|\s+Name\s+\|\s+Right\s+\|\s+Last Updated\s+\|\s+By\s+\|", privileges)
    assert re.search(r"\|\s+joe\s+\|\s+ADD_PROCESSOR\s+\|.*\|\s+admin\s+\|", privileges)
    assert re.search(r"\|\s+developer\s+\|\s+READ\s+\|", privileges)
    data = one(run_cli, "user", "joe")
    assert [r["name"] for r in data["roles"]] == ["developer"]
    assert sorted(p["right"] for p in data["privileges"]) == ["ADD_PROCESSOR", "READ"]
    role = one(run_cli, "role", "developer")
    assert [u["name"] for u in role["users"]] == ["joe"]

    for args in (("ls", "users"), ("ls", "users", "--json"), ("ls", "user", "-n", "joe"),
                 ("ls", "user", "-n", "joe", "--json"), ("ls", "user", "-n", "ann", "--json"),
                 ("ls", "role", "-n", "developer", "--json")):
        out = ok(run_cli, *args)
        assert "12345" not in out and "Pa55-word" not in out and "scrypt" not in out, args
        assert "password" not in out.lower(), args
    assert names(run_cli, "users") == {"admin", "joe", "ann"}

    assert ok(run_cli, "add", "privilege", "-u", "joe", "-n", "ADD_PROCESSOR").strip() == \
        'user "joe" already has the right ADD_PROCESSOR'
    assert sorted(p["right"] for p in one(run_cli, "user", "joe")["privileges"]) == ["ADD_PROCESSOR", "READ"]
    assert "already has role" in error(run_cli, 2, "add", "role", "-n", "developer", "-u", "joe")
    assert "role 'developer' already exists" in error(run_cli, 2, "add", "role", "-n", "developer")
    assert "exactly one of -u/--user or -r/--role" in error(run_cli, 2, "add", "privilege", "-n", "READ")
    assert "did you mean 'joe'?" in error(run_cli, 2, "add", "privilege", "-u", "jo", "-n", "READ")

    ok(run_cli, "delete", "role", "-n", "developer", "-u", "joe")
    assert one(run_cli, "user", "joe")["roles"] == []
    ok(run_cli, "delete", "privilege", "-u", "joe", "-n", "ADD_PROCESSOR")
    assert one(run_cli, "user", "joe")["privileges"] == []
    assert 'User "joe" updated' in ok(run_cli, "update", "user", "-n", "joe", "-e", "joe@new")
    assert one(run_cli, "user", "joe")["email"] == "joe@new"
    assert 'User "joe" deleted' in ok(run_cli, "delete", "user", "-n", "joe")
    assert names(run_cli, "users") == {"admin", "ann"}


def test_granted_rights_take_effect(db_url, run_cli, monkeypatch):
    ok(run_cli, "add", "user", "-n", "joe", "-e", "joe@xyz", "-p", "12345")
    ok(run_cli, "add", "role", "-n", "developer")
    ok(run_cli, "add", "privilege", "-r", "developer", "-n", "ADD_QUEUE")
    ok(run_cli, "add", "role", "-n", "developer", "-u", "joe")
    monkeypatch.setenv("PYFI_USER", "joe")
    assert "lacks the right ADD_PROCESSOR" in error(run_cli, 1, "add", "processor", "-n", "p", "-m", "m", "-g", GIT)
    out = ok(run_cli, "add", "queue", "-n", "joes")
    assert ID_LINE.match(out.strip())
    monkeypatch.setenv("PYFI_USER", "admin")
    assert one(run_cli, "queue", "joes")["owner"] == "joe"


# --- proc requests and secrets ----------------------------------------------

def test_proc_actions_set_requested_status(db_url, run_cli):
    make_flow(run_cli)
    ident = one(run_cli, "processor", "p1")["id"]

    def requested() -> str:
        return one(run_cli, "processor", "p1")["requested_status"]

    for action, status in (("start", "running"), ("stop", "stopped"), ("pause", "paused"), ("resume", "running"),
                           ("remove", "removed")):
        out = ok(run_cli, "proc", action, "-n", "p1")
        assert out.strip() == f"Processor 'p1': requested {status}"
        assert requested() == status, action
    ok(run_cli, "proc", "--id", ident, "stop")
    assert requested() == "stopped"
    ok(run_cli, "proc", "-n", "p1", "pause")
    assert requested() == "paused"
    ok(run_cli, "proc", "restart", "-n", "p1")
    data = one(run_cli, "processor", "p1")
    if "restart_requested" in data:  # restart = run again, with a restart stamp the agents act on
        assert data["requested_status"] == "running" and data["restart_requested"]
    else:
        assert data["requested_status"] == "restart"
    assert "did you mean 'p1'?" in error(run_cli, 2, "proc", "stop", "-n", "p")
    assert "none was named" in error(run_cli, 2, "proc", "stop")


def test_git_credentials_are_masked(db_url, run_cli):
    ok(run_cli, "add", "processor", "-n", "p1", "-m", "pkg.sample", "-g", "https://bob:s3cret@github.com/acme/x.git")
    ok(run_cli, "add", "processor", "-n", "p2", "-m", "pkg.sample", "-g", "https://ghp_T0KEN@github.com/acme/y.git")
    for args in (("ls", "processors"), ("ls", "processors", "--json"), ("ls", "processor", "-n", "p1"),
                 ("ls", "processor", "-n", "p1", "--json"), ("ls", "processor", "-n", "p2", "--json")):
        out = ok(run_cli, *args)
        assert "s3cret" not in out and "ghp_T0KEN" not in out, args
    assert "https://bob:***@github.com/acme/x.git" in ok(run_cli, "ls", "processors")
    assert one(run_cli, "processor", "p1")["gitrepo"] == "https://bob:***@github.com/acme/x.git"
    assert one(run_cli, "processor", "p2")["gitrepo"] == "https://***@github.com/acme/y.git"


def test_names_are_validated(db_url, run_cli):
    assert "invalid queue name ' q1'" in error(run_cli, 2, "add", "queue", "-n", " q1")
    assert "needs a name" in error(run_cli, 2, "add", "queue", "-n", "   ")
    assert names(run_cli, "queues") == set()


def test_only_requestable_statuses_are_accepted(db_url, run_cli):
    result = run_cli("add", "processor", "-n", "p", "-m", "m", "-g", "/tmp/repo", "-rs", "error")
    assert result.exit_code == 2 and "cannot be requested" in result.output
    assert run_cli("add", "processor", "-n", "p", "-m", "m", "-g", "/tmp/repo", "-rs", "stopped").exit_code == 0
