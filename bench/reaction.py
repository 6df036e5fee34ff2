"""Benchmark (not a test): control-plane reaction time, from a `pyfi proc ...` request to its effect.

An agent (``pyfi agent start -n benchnode``, a subprocess) runs one processor
whose code comes from a git repository made in a temp dir
(examples/processors/sample.py). Each repetition does what ``pyfi proc`` does
(``pyfi.core.processors.request``, commit, then ``pyfi.messaging.doorbell.ring``)
and times from the request's commit to:

- pause:  the processor's status 'paused' (the worker process is the same);
- resume: status 'running', and a call sent while paused being served;
- stop:   status 'stopped', and no worker process of the processor left;
- start:  status 'running', and a call sent right after the request being served.

It prints the median and the maximum of each; the target is 2 s.

    python bench/reaction.py [--stack redis|rabbitmq|embedded] [--repeat 5]
"""
from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    EXAMPLES,
    STACKS,
    USER,
    Children,
    exit_on_sigterm,
    forget_run,
    interrupts_reported,
    median,
    python,
    run_id,
    stack,
    wait_for,
)
from pyfi.worker.processes import worker_processes  # noqa: E402

NODE = "benchnode"
TARGET = 2.0
POLL = 0.02
#: first deployment: git clone, a virtual environment, a Celery worker booting
DEPLOY_TIMEOUT = 300.0
ACTION_TIMEOUT = 30.0


# -- setup -------------------------------------------------------------------------------------
def make_repo(root: Path) -> Path:
    """A git repository holding examples/processors/sample.py, on branch main."""
    repo = root / "sample-repo"
    repo.mkdir()
    shutil.copy(EXAMPLES / "sample.py", repo / "sample.py")
    git = ["git", "-C", str(repo), "-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    for args in (["init", "-q", "-b", "main"], ["add", "sample.py"], ["commit", "-q", "-m", "sample processor"]):
        subprocess.run(git + args, check=True, timeout=60)
    return repo


def add_network(db_url: str, repo: Path, rid: str) -> tuple[str, str]:
    """A queue, a processor from ``repo`` and one socket on ``do_something``: (processor, socket)."""
    from pyfi.core import objects
    from pyfi.core.access import Actor
    from pyfi.core.kinds import kind
    from pyfi.db.engine import session_scope

    queue, processor, socket = f"react.{rid}", f"reactproc-{rid}", f"reactsock-{rid}"
    actor = Actor(USER)
    with session_scope(db_url) as session:
        objects.add(session, actor, kind("queue"), {"name": queue, "type": "direct"})
        objects.add(session, actor, kind("processor"), {"name": processor, "module": "sample", "gitrepo": str(repo),
                                                         "branch": "main", "workers": 1})
        objects.add(session, actor, kind("socket"), {"name": socket, "queue": queue, "processor": processor,
                                                     "task": "do_something"})
    return processor, socket


# -- observing -----------------------------------------------------------------------------------
def status(db_url: str, processor: str) -> str:
    from sqlalchemy import select

    from pyfi.db.engine import session_scope
    from pyfi.db.models import Processor

    with session_scope(db_url) as session:
        return str(session.scalar(select(Processor.status).where(Processor.name == processor)))


def request(settings: Any, action: str, processor: str) -> float:
    """Do what `pyfi proc ACTION` does (commit the request, ring the agents); the time right after the commit."""
    from pyfi.core.access import Actor
    from pyfi.core.processors import request as request_action
    from pyfi.db.engine import session_scope
    from pyfi.messaging.doorbell import ring

    with session_scope(settings.db) as session:
        request_action(session, Actor(USER), action, processor, None)
    committed = time.monotonic()
    ring(settings.pubsub, processor)
    return committed


def since(start: float, check: Callable[[], Any], what: str) -> float:
    wait_for(check, ACTION_TIMEOUT, what, POLL)
    return time.monotonic() - start


# -- calls -----------------------------------------------------------------------------------------
class Caller:
    """Sends calls to the socket and tells when each was served."""

    def __init__(self, settings: Any, socket: str) -> None:
        from pyfi.core.access import Actor
        from pyfi.core.keys import user_signer
        from pyfi.core.tasks import plan
        from pyfi.db.engine import session_scope
        from pyfi.messaging.app import make_app

        with session_scope(settings.db) as session:
            self.routes = plan(session, Actor(USER), socket)
            signer = user_signer(session, Actor(USER))
        self.app = make_app(settings, signer=signer)
        self.ids: list[str] = []

    @property
    def queues(self) -> list[str]:
        return [route.broker_queue for route in self.routes]

    def send(self) -> str:
        from pyfi.core.tasks import send

        call_id = send(self.app, self.routes, ["reaction"])[0].id
        self.ids.append(call_id)
        return call_id

    def served(self, call_id: str) -> bool:
        return self.app.AsyncResult(call_id).ready()

    def close(self) -> None:
        self.app.close()


# -- one repetition --------------------------------------------------------------------------------
Timings = dict[str, list[float]]


def cycle(settings: Any, processor: str, home: Path, caller: Caller, timings: Timings) -> None:
    """pause -> resume -> stop -> start, each timed from its request to its effect."""
    db_url = settings.db
    workers = worker_processes(processor, home)
    start = request(settings, "pause", processor)
    timings["pause -> paused"].append(since(start, lambda: status(db_url, processor) == "paused", "status paused"))
    if worker_processes(processor, home) != workers:
        raise SystemExit("pause restarted the worker; it must only stop consuming")
    waiting = caller.send()

    start = request(settings, "resume", processor)
    timings["resume -> running"].append(since(start, lambda: status(db_url, processor) == "running", "status running"))
    timings["resume -> queued call served"].append(since(start, lambda: caller.served(waiting), "the queued call"))

    start = request(settings, "stop", processor)
    timings["stop -> stopped"].append(since(start, lambda: status(db_url, processor) == "stopped", "status stopped"))
    timings["stop -> worker gone"].append(since(start, lambda: not worker_processes(processor, home), "worker exit"))

    start = request(settings, "start", processor)
    call = caller.send()
    timings["start -> running"].append(since(start, lambda: status(db_url, processor) == "running", "status running"))
    timings["start -> call served"].append(since(start, lambda: caller.served(call), "a call served"))


def report(args: argparse.Namespace, timings: Timings, deploy: float) -> None:
    print(f"\nreaction, stack {args.stack}, {time.strftime('%Y-%m-%d %H:%M')}: {args.repeat} repetitions, "
          f"{os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f}; target {TARGET:.0f} s "
          f"(first deployment took {deploy:.1f} s)")
    width = max(len(k) for k in timings)
    for action, values in timings.items():
        verdict = "ok" if max(values) <= TARGET else "SLOW"
        print(f"  {action:{width}}  median {median(values):5.2f} s   max {max(values):5.2f} s   {verdict}")


# -- main ------------------------------------------------------------------------------------------
def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="redis", choices=STACKS)
    parser.add_argument("--repeat", type=int, default=5, help="pause/resume/stop/start cycles")
    return parser.parse_args()


def benchmark(args: argparse.Namespace) -> None:
    rid = run_id()
    with stack(args.stack) as (settings, env, home):
        repo = make_repo(home.parent)
        processor, socket = add_network(settings.db, repo, rid)
        caller = Caller(settings, socket)
        try:
            with Children(marker=home) as children:
                began = time.monotonic()
                agent = children.start("agent", [python(), "-m", "pyfi.cli", "agent", "start", "-n", NODE], env,
                                       home.parent / "agent.log")
                deploy = first_call(caller, agent, began)
                timings: Timings = collections.defaultdict(list)
                for number in range(args.repeat):
                    cycle(settings, processor, home, caller, timings)
                    print(f"repetition {number + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in timings.items()),
                          flush=True)
                report(args, timings, deploy)
        finally:
            caller.close()
            forget_run(settings, rid, caller.queues, caller.ids)


def first_call(caller: Caller, agent: Any, began: float) -> float:
    """Seconds until the agent deployed the processor and served a first call."""
    first = caller.send()
    print("waiting for the first deployment (git clone, virtual environment, worker)...", flush=True)
    wait_for(lambda: caller.served(first) or not agent.alive(), DEPLOY_TIMEOUT, "the first call served", 0.2)
    if not agent.alive():
        raise SystemExit(f"the agent exited:\n{agent.tail()}")
    return time.monotonic() - began


def main() -> None:
    exit_on_sigterm()
    with interrupts_reported():
        benchmark(parse_args())


if __name__ == "__main__":
    main()
