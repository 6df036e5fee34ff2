"""Schedulers on a real database: leases, placement rounds, cordon and drain, and the commands that steer them.

Agents here are rows with a fresh (or stale) heartbeat; tests/test_cluster.py
runs real agents.
"""
from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap

import pytest
from clihelp import GIT, error, ok, rows
from network import wait_for
from sqlalchemy import select

from pyfi.db.base import utcnow
from pyfi.db.engine import session_scope
from pyfi.db.models import Agent, Deployment, Node, Placement, Processor, Scheduler
from pyfi.enums import AgentStatus
from pyfi.scheduler.lease import Lease
from pyfi.scheduler.placer import place_round


def node(db_url: str, name: str, cpus: int = 2, *, alive: bool = True) -> None:
    """A node with an agent whose heartbeat is fresh (``alive``) or older than LOST_AFTER."""
    seen = utcnow() - dt.timedelta(seconds=0 if alive else 60)
    with session_scope(db_url) as session:
        row = session.scalar(select(Node).where(Node.name == name))
        if row is None:
            row = Node(name=name, hostname=name, cpus=cpus, owner="pyfi")
            session.add(row)
            session.flush()
        agent = session.scalar(select(Agent).where(Agent.name == name))
        if agent is None:
            agent = Agent(name=name, node_id=row.id, hostname=name, owner="pyfi", status=AgentStatus.RUNNING)
            session.add(agent)
        agent.lastupdated = seen


def placed(db_url: str, scheduler: str = "s") -> dict[str, dict[str, int]]:
    """Run one placement round; processor -> {node: worker processes} of the scheduler's deployments after it."""
    with session_scope(db_url) as session:
        place_round(session, session.scalar(select(Scheduler).where(Scheduler.name == scheduler)))
    with session_scope(db_url) as session:
        found: dict[str, dict[str, int]] = {}
        for d in session.scalars(select(Deployment).where(Deployment.scheduler_id.is_not(None))):
            found.setdefault(d.processor.name, {})[d.hostname] = d.cpus
        return found


def cluster(db_url: str, run_cli, strategy: str = "balanced", nodes: tuple[str, ...] = ("n1", "n2")) -> None:
    ok(run_cli, "add", "scheduler", "-n", "s", "-s", strategy)
    for name in nodes:
        node(db_url, name)
        ok(run_cli, "scheduler", "-n", "s", "add", "--node", name)


def processor(run_cli, name: str, workers: int, *extra: str) -> None:
    ok(run_cli, "add", "processor", "-n", name, "-m", "sample", "-g", GIT, "-w", str(workers), *extra)


def test_balanced_spreads_each_processor_and_records_every_move(db_url, run_cli):
    cluster(db_url, run_cli)
    processor(run_cli, "two", 2)
    processor(run_cli, "three", 3)
    assert placed(db_url) == {"two": {"n1": 1, "n2": 1}, "three": {"n1": 2, "n2": 1}}
    assert placed(db_url) == {"two": {"n1": 1, "n2": 1}, "three": {"n1": 2, "n2": 1}}  # a second round moves nothing
    shown = rows(run_cli, "placements")
    assert len(shown) == 4 and {r["reason"] for r in shown} == {"placed"}
    assert {(r["processor"], r["node"], r["before"], r["after"]) for r in shown} >= {("three", "n1", 0, 2)}


def test_efficient_packs_onto_as_few_nodes_as_cpus_allow(db_url, run_cli):
    cluster(db_url, run_cli, "efficient")  # two nodes of 2 CPUs
    processor(run_cli, "two", 2)
    processor(run_cli, "one", 1)
    assert placed(db_url) == {"two": {"n1": 2}, "one": {"n2": 1}}
    processor(run_cli, "three", 3)
    assert placed(db_url) == {"two": {"n1": 2}, "one": {"n2": 1}, "three": {"n2": 3}}  # over capacity: nothing moves
    processor(run_cli, "pinned", 1, "-h", "elsewhere")
    assert "pinned" not in placed(db_url)


def test_a_lost_node_s_share_moves_and_comes_back_without_moving_the_rest(db_url, run_cli):
    cluster(db_url, run_cli)
    processor(run_cli, "p", 2)
    assert placed(db_url) == {"p": {"n1": 1, "n2": 1}}
    node(db_url, "n2", alive=False)
    assert placed(db_url) == {"p": {"n1": 2}}
    assert {r["reason"] for r in rows(run_cli, "placements") if r["node"] == "n2" and r["after"] == 0} == \
        {"its agent is lost"}
    node(db_url, "n2")
    assert placed(db_url) == {"p": {"n1": 1, "n2": 1}}  # n1 keeps its deployment (resized, not restarted)


def test_cordon_keeps_what_runs_drain_moves_it_uncordon_places_again(db_url, run_cli):
    cluster(db_url, run_cli)
    processor(run_cli, "p", 2)
    placed(db_url)
    assert "Node 'n2': cordoned" in ok(run_cli, "node", "cordon", "-n", "n2")
    processor(run_cli, "q", 2)
    assert placed(db_url) == {"p": {"n1": 1, "n2": 1}, "q": {"n1": 2}}
    assert "Node 'n2': draining" in ok(run_cli, "node", "drain", "-n", "n2")
    assert placed(db_url) == {"p": {"n1": 2}, "q": {"n1": 2}}
    assert "Node 'n2': schedulable" in ok(run_cli, "node", "uncordon", "-n", "n2")
    assert placed(db_url) == {"p": {"n1": 1, "n2": 1}, "q": {"n1": 1, "n2": 1}}
    shown = {r["name"]: r for r in rows(run_cli, "nodes")}
    assert shown["n2"]["state"] == "schedulable"


def test_a_deployment_added_by_hand_wins(db_url, run_cli):
    cluster(db_url, run_cli)
    processor(run_cli, "p", 2)
    assert placed(db_url) == {"p": {"n1": 1, "n2": 1}}
    ok(run_cli, "add", "deployment", "-n", "mine", "-p", "p", "-h", "n1", "--cpus", "3")
    assert placed(db_url) == {}
    assert {r["reason"] for r in rows(run_cli, "placements") if r["after"] == 0} == {"pinned or placed by hand"}


def test_a_node_belongs_to_one_scheduler(db_url, run_cli):
    cluster(db_url, run_cli)
    ok(run_cli, "add", "scheduler", "-n", "other")
    line = error(run_cli, 1, "scheduler", "-n", "other", "add", "--node", "n1")
    assert "belongs to scheduler 's'" in line and "pyfi scheduler -n s remove --node n1" in line
    assert "no node named 'nope'" in error(run_cli, 2, "scheduler", "-n", "s", "add", "--node", "nope")
    ok(run_cli, "scheduler", "-n", "s", "remove", "--node", "n1")
    assert "Scheduler 'other' places on: n1" in ok(run_cli, "scheduler", "-n", "other", "add", "--node", "n1")
    shown = json.loads(ok(run_cli, "ls", "scheduler", "-n", "other", "--json"))
    assert [n["name"] for n in shown["nodes"]] == ["n1"] and shown["node_names"] == "n1"
    assert " n1 " in ok(run_cli, "ls", "scheduler", "-n", "other").split("Nodes")[1]


LEASE_HOLDER = textwrap.dedent("""
    import sys, time
    from pyfi.scheduler.lease import Lease
    lease = Lease(sys.argv[1], "t")
    assert lease.acquire()
    print("held", flush=True)
    time.sleep(600)
""")


def test_one_holder_at_a_time_and_the_lease_is_free_when_its_holder_dies(db_url):
    holder = subprocess.Popen([sys.executable, "-c", LEASE_HOLDER, db_url], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        standby = Lease(db_url, "t")
        assert not standby.acquire()
        assert Lease(db_url, "another name").acquire()
        holder.kill()  # no release: the server (PostgreSQL) or the kernel (flock) frees it
        wait_for(standby.acquire, 20, "the standby to take the lease")
        assert standby.held() and not Lease(db_url, "t").acquire()
        standby.release()
        assert Lease(db_url, "t").acquire()
    finally:
        holder.kill()
        holder.wait()


def test_scheduler_commands_refuse_bad_input_and_change_nothing(db_url, run_cli):
    cluster(db_url, run_cli)
    assert "no scheduler named 'nope'" in error(run_cli, 2, "scheduler", "-n", "nope", "add", "--node", "n1")
    assert "which scheduler? (give -n/--name NAME)" in error(run_cli, 2, "scheduler", "add", "--node", "n1")
    assert "two schedulers named" in error(run_cli, 2, "scheduler", "-n", "s", "remove", "-n", "t", "--node", "n1")
    node(db_url, "n3")
    assert "not one of scheduler 's'" in error(run_cli, 2, "scheduler", "-n", "s", "remove", "--node", "n3")
    with session_scope(db_url) as session:
        assert sorted(n.name for n in session.scalar(select(Scheduler)).nodes) == ["n1", "n2"]
        assert session.scalar(select(Placement)) is None


@pytest.mark.parametrize("args, message", [
    (("--cron", "every minute"), "invalid cron expression"),
    (("--cron", "* * * * *", "-i", "5"), "not both"),
])
def test_socket_schedules_are_checked(db_url, run_cli, args, message):
    ok(run_cli, "add", "queue", "-n", "q")
    processor(run_cli, "p", 1)
    assert message in error(run_cli, 2, "add", "socket", "-n", "s", "-q", "q", "-pn", "p", "-t", "run", *args)
    assert rows(run_cli, "sockets") == []


def test_a_timed_socket_without_beat_warns_and_ls_shows_when_it_fires(db_url, run_cli):
    ok(run_cli, "add", "queue", "-n", "q")
    processor(run_cli, "p", 1)
    result = run_cli("add", "socket", "-n", "s", "-q", "q", "-pn", "p", "-t", "run", "-i", "60")
    assert result.exit_code == 0
    assert result.stderr.strip() == ("Warning: processor 'p' has no -b/--beat: socket 's''s schedule does not fire "
                                     "until `pyfi update processor -n p --beat`")
    assert rows(run_cli, "sockets")[0]["next_fire"] == "never: its processor has no -b/--beat"
    ok(run_cli, "update", "processor", "-n", "p", "--beat")
    fire = dt.datetime.fromisoformat(rows(run_cli, "sockets")[0]["next_fire"])
    assert fire.second == 0 and dt.timedelta(0) < fire - utcnow() <= dt.timedelta(seconds=60)
    result = run_cli("update", "socket", "-n", "s", "--cron", "0 3 * * *")  # a cron schedule replaces the interval
    assert result.exit_code == 0 and result.stderr == ""
    shown = rows(run_cli, "sockets")[0]
    assert shown["interval"] is None and shown["cron"] == "0 3 * * *" and shown["next_fire"].endswith("03:00:00")
    ok(run_cli, "update", "socket", "-n", "s", "--cron", "")
    shown = rows(run_cli, "sockets")[0]
    assert shown["interval"] is None and shown["cron"] is None and shown["next_fire"] is None


def test_two_beat_holders_never_fire_one_tick_twice(db_url, run_cli):
    """An old holder that lost its lease without knowing it yet, and the new one, claim the same tick: one wins."""
    from sqlalchemy.orm import Session

    from pyfi.config import resolve
    from pyfi.db.engine import get_engine
    from pyfi.db.models import Socket, SocketTick
    from pyfi.scheduler.beat import Beat, latest_tick

    ok(run_cli, "add", "queue", "-n", "q")
    processor(run_cli, "p", 1, "-b")
    ok(run_cli, "add", "socket", "-n", "s", "-q", "q", "-pn", "p", "-t", "run", "-i", "2")
    with session_scope(db_url) as session:
        session.execute(Processor.__table__.update().values(status="running"))
    old, new = Beat(resolve()), Beat(resolve())
    now = dt.datetime(2026, 1, 1, 12, 0, 1)
    with session_scope(db_url) as session:
        assert old.claim_due(session, now) == []  # first sight: counted from now, fires at the next tick
    later = now + dt.timedelta(seconds=5)
    engine = get_engine(db_url)
    with Session(engine) as first, Session(engine) as second:
        assert second.scalar(select(SocketTick)) is not None  # the new holder read the last tick before the old one moved it
        claimed_first = old.claim_due(first, later)
        first.commit()
        claimed_second = new.claim_due(second, later)
        second.commit()
    assert [t for _, t in claimed_first] == [dt.datetime(2026, 1, 1, 12, 0, 6)] and claimed_second == []
    with session_scope(db_url) as session:
        assert session.scalar(select(SocketTick.last_tick)) == latest_tick(session.scalar(select(Socket)), later)
