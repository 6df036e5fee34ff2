"""Benchmark (not a test): how fast a scheduler places, and how fast a dead node's share moves.

Two agents (``nodeA``, ``nodeB``: subprocesses on this machine) and a
``pyfi scheduler start`` run one processor with ``-w 2`` from a git
repository made in a temp dir (examples/processors/sample.py), placed by a
BALANCED scheduler with the default interval (5 s): one worker process on
each node. Each repetition times:

- drain -> moved:    ``pyfi node drain -n nodeB`` (committed, the schedulers rung) until the deployments say
  nodeA 2, and nodeA's worker runs 2 processes (resized, not restarted);
- uncordon -> back:  ``pyfi node uncordon -n nodeB`` until nodeB's worker serves with 1 process again;
- kill -> moved:     ``kill -9`` of nodeB's agent until the deployments say nodeA 2 (its heartbeat goes stale
  after 3 heartbeats, 9 s), and until nodeA's worker runs 2 processes;
- restart -> back:   nodeB's agent started again until it serves its share again.

It prints the median and the maximum of each.

    python bench/placement.py [--stack redis|rabbitmq|embedded] [--repeat 3]
"""
from __future__ import annotations

import argparse
import collections
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    STACKS,
    USER,
    Children,
    exit_on_sigterm,
    interrupts_reported,
    median,
    python,
    stack,
    wait_for,
)
from bench.reaction import make_repo  # noqa: E402

NODES = ("nodeA", "nodeB")
FIRST_TIMEOUT = 300.0  # the first deployment: git clone, a virtual environment, Celery workers booting
MOVE_TIMEOUT = 90.0
POLL = 0.05


def add_network(db_url: str, repo: Path) -> None:
    """The processor (-w 2), a BALANCED scheduler and its two nodes (registered by their agents already)."""
    from pyfi.core import objects, scheduling
    from pyfi.core.access import Actor
    from pyfi.core.kinds import kind
    from pyfi.db.engine import session_scope

    actor = Actor(USER)
    with session_scope(db_url) as session:
        objects.add(session, actor, kind("processor"), {"name": "placed", "module": "sample", "gitrepo": str(repo),
                                                        "branch": "main", "workers": 2})
        objects.add(session, actor, kind("scheduler"), {"name": "bench", "strategy": "balanced"})
        for node in NODES:
            scheduling.add_node(session, actor, "bench", node)


def node_command(settings: Any, command: str, node: str) -> float:
    """Do what `pyfi node COMMAND -n NODE` does; the time right after the commit."""
    from pyfi.core.access import Actor
    from pyfi.core.network import namespace
    from pyfi.core.scheduling import set_node_state
    from pyfi.db.engine import session_scope
    from pyfi.messaging.doorbell import SCHEDULERS, ring

    with session_scope(settings.db) as session:
        set_node_state(session, Actor(USER), node, command)
        channels = namespace(session)
    committed = time.monotonic()
    ring(settings.pubsub, "placement", channels, SCHEDULERS)
    return committed


def deployments(db_url: str) -> dict[str, int]:
    from sqlalchemy import select

    from pyfi.db.engine import session_scope
    from pyfi.db.models import Deployment

    with session_scope(db_url) as session:
        return {d.hostname: d.cpus for d in session.scalars(select(Deployment))}


def workers(db_url: str) -> dict[str, int]:
    """agent -> worker processes of its live worker row."""
    from sqlalchemy import select

    from pyfi.core.liveness import shown_worker_status
    from pyfi.db.engine import session_scope
    from pyfi.db.models import Worker

    with session_scope(db_url) as session:
        return {w.agent.name: w.concurrency for w in session.scalars(select(Worker))
                if w.agent is not None and str(shown_worker_status(w)) == "running"}


def since(start: float, check: Callable[[], Any], what: str) -> float:
    wait_for(check, MOVE_TIMEOUT, what, POLL)
    return time.monotonic() - start


Timings = dict[str, list[float]]


def cycle(settings: Any, agents: dict[str, Any], start_agent: Callable[[str], Any], timings: Timings) -> None:
    db = settings.db
    began = node_command(settings, "drain", "nodeB")
    timings["drain -> deployments moved"].append(since(began, lambda: deployments(db) == {"nodeA": 2}, "the move"))
    timings["drain -> nodeA serves 2"].append(since(began, lambda: workers(db).get("nodeA") == 2, "nodeA resized"))
    began = node_command(settings, "uncordon", "nodeB")
    timings["uncordon -> nodeB serves 1"].append(
        since(began, lambda: workers(db) == {"nodeA": 1, "nodeB": 1}, "nodeB back"))

    began = time.monotonic()
    os.kill(agents.pop("nodeB").proc.pid, signal.SIGKILL)
    timings["kill -9 -> deployments moved"].append(since(began, lambda: deployments(db) == {"nodeA": 2}, "failover"))
    timings["kill -9 -> nodeA serves 2"].append(since(began, lambda: workers(db).get("nodeA") == 2, "nodeA resized"))
    began = time.monotonic()
    agents["nodeB"] = start_agent("nodeB")
    timings["restart -> nodeB serves 1"].append(
        since(began, lambda: deployments(db) == {"nodeA": 1, "nodeB": 1} and workers(db).get("nodeB") == 1,
              "nodeB back"))


def report(args: argparse.Namespace, timings: Timings) -> None:
    print(f"\nplacement, stack {args.stack}, {time.strftime('%Y-%m-%d %H:%M')}: {args.repeat} repetitions, "
          f"{os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f}")
    width = max(len(k) for k in timings)
    for action, values in timings.items():
        print(f"  {action:{width}}  median {median(values):5.2f} s   max {max(values):5.2f} s")


def benchmark(args: argparse.Namespace) -> None:
    with stack(args.stack) as (settings, env, home), Children(marker=home) as children:
        def start_agent(node: str) -> Any:
            return children.start(node, [python(), "-m", "pyfi.cli", "agent", "start", "-n", node], env,
                                  home.parent / f"agent-{node}.log")

        agents = {node: start_agent(node) for node in NODES}
        wait_for(lambda: _registered(settings.db), 60, "both nodes to register", 0.2)
        add_network(settings.db, make_repo(home.parent))
        children.start("scheduler", [python(), "-m", "pyfi.cli", "scheduler", "start", "-n", "bench"], env,
                       home.parent / "scheduler.log")
        print("waiting for the first deployment (git clone, virtual environment, workers)...", flush=True)
        wait_for(lambda: workers(settings.db) == {"nodeA": 1, "nodeB": 1}, FIRST_TIMEOUT, "first placement", 0.2)
        timings: Timings = collections.defaultdict(list)
        for number in range(args.repeat):
            cycle(settings, agents, start_agent, timings)
            print(f"repetition {number + 1}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in timings.items()), flush=True)
        report(args, timings)


def _registered(db_url: str) -> bool:
    from sqlalchemy import select

    from pyfi.db.engine import session_scope
    from pyfi.db.models import Node

    with session_scope(db_url) as session:
        return set(session.scalars(select(Node.name))) >= set(NODES)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="redis", choices=STACKS)
    parser.add_argument("--repeat", type=int, default=3, help="drain/uncordon/kill/restart cycles")
    return parser.parse_args()


def main() -> None:
    exit_on_sigterm()
    with interrupts_reported():
        benchmark(parse_args())


if __name__ == "__main__":
    main()
