"""Benchmark (not a test): bursts of ``Socket.delay`` calls against Celery's own ``task.delay``.

One run, one broker and result backend, the same function
(``sample.do_something``) and worker concurrency on both sides:

- celery: a plain Celery app's ``task.delay(payload)``, served by a bare
  Celery worker (as in ``throughput.py``);
- pyfi:   ``pyfi.client.Socket(name=...).delay(payload)``, served by a pyfi
  worker (what an agent spawns), which checks each call's signature and
  records it.

With ``--agent``, pyfi's worker is the one a ``pyfi agent start`` runs for
the processor (its code cloned from a git repository made for the run),
and the agent's own CPU is counted with pyfi's: what a user's network runs.

A burst sends ``--calls`` calls, then gathers every result with ``.get()``;
its rate is calls over the time from the first send to the last result.
Sides alternate (celery, pyfi, pyfi, celery, ...) for ``--rounds`` rounds
after one unmeasured burst each. After a pyfi burst the script waits, untimed,
until its worker has recorded every call, so that none of that work falls
into the next Celery burst; the CPU each side used per call is counted over
that span, by process: the sender (this script), the worker's main, pool
and sidecar processes, the database server processes, the Redis server, and
the whole machine.

    python bench/client_send.py [--stack redis|embedded] [--calls 600] [--rounds 6] [--agent]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (EXAMPLES, Children, exit_on_sigterm, forget_run, interrupts_reported, median,  # noqa: E402
                          python, run_id, stack, wait_for)
from bench.cpu import CpuMeter, cpu_seconds, machine_cpu_seconds, server_pids  # noqa: E402
from bench.records import wait_recorded  # noqa: E402
from bench.throughput import (BARE_TASK, PAYLOAD, add_processor, bare_app, check_alive, start_bare_worker,  # noqa: E402
                              start_workers)

Send = Callable[[str], Any]


@dataclass
class Side:
    """One way of sending: its send, the meter of its worker's processes, what waits for its work to end."""

    send: Send
    meter: CpuMeter
    settle: Callable[[int], None] = lambda sent: None  # (calls sent so far): returns once the worker is done
    others: dict[str, int] = field(default_factory=dict)  # more processes of this side whose CPU counts: name -> pid
    sent: int = 0
    rates: list[float] = field(default_factory=list)
    cpu: dict[str, list[float]] = field(default_factory=dict)  # CPU seconds per call of each burst, by process


def celery_sender(settings: Any, queue: str) -> tuple[Send, Any]:
    """``task.delay`` of the function registered as a plain Celery task routed to the bare worker's queue."""
    from pyfi.messaging.routing import kombu_queue

    sys.path.insert(0, str(EXAMPLES))
    import sample  # examples/processors/sample.py

    app = bare_app(settings)
    app.conf.task_queues = [kombu_queue(queue)]
    app.conf.task_routes = {BARE_TASK: {"queue": queue}}
    task = app.task(name=BARE_TASK)(sample.do_something)
    return task.delay, app


def pyfi_sender(settings: Any, socket: str) -> tuple[Send, Any]:
    """``Socket.delay`` of the client, in a context of its own."""
    from pyfi.client import Context, Socket

    context = Context(settings=settings, timeout=300)
    return Socket(socket, context=context).delay, context


def burst(side: Side, calls: int, ids: list[str]) -> float:
    """Send ``calls`` calls, then ``.get()`` each: calls per second from the first send to the last result.

    The CPU used until the side settled is added to ``side.cpu``, per call.
    """
    before, machine, script = side.meter.sample(), machine_cpu_seconds(), time.process_time()
    servers = {pid: cpu_seconds(pid) for pid in server_pids()}
    others = {name: cpu_seconds(pid) for name, pid in side.others.items()}
    began = time.perf_counter()
    handles = [side.send(PAYLOAD) for _ in range(calls)]
    for handle in handles:
        handle.get(timeout=300)
    elapsed, sender = time.perf_counter() - began, time.process_time() - script
    side.sent += calls
    side.settle(side.sent)
    used = {"sender": sender, **side.meter.used_by_role(before)}
    used["database"] = side.meter.used(before, worker=False)
    used.update((name, cpu_seconds(side.others[name]) - seconds) for name, seconds in others.items())
    used["servers"] = sum(cpu_seconds(pid) - seconds for pid, seconds in servers.items())
    used["whole machine"] = machine_cpu_seconds() - machine
    for name, seconds in used.items():
        side.cpu.setdefault(name, []).append(seconds / calls)
    ids.extend(handle.id for handle in handles)
    return calls / elapsed


def rounds(args: argparse.Namespace, sides: dict[str, Side], children: Children, ids: list[str]) -> None:
    """One unmeasured burst per side, then ``--rounds`` measured ones, the order alternating."""
    for side in sides.values():
        burst(side, min(args.calls, 100), ids)
        side.cpu.clear()
    for number in range(args.rounds):
        order = list(sides) if number % 2 == 0 else list(reversed(sides))
        for name in order:
            sides[name].rates.append(burst(sides[name], args.calls, ids))
            print(f"round {number + 1} {name:6} {sides[name].rates[-1]:5.0f} calls/s", flush=True)
        check_alive(children)


def report(args: argparse.Namespace, sides: dict[str, Side]) -> None:
    celery, pyfi = sides["celery"].rates, sides["pyfi"].rates
    paired = [p / c for p, c in zip(pyfi, celery, strict=True)]
    print(f"\nclient send, stack {args.stack}, {time.strftime('%Y-%m-%d %H:%M')}: {args.rounds} rounds x {args.calls} "
          f"calls per side, concurrency {args.concurrency}, {os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}")
    for name, side in sides.items():
        cpu = ", ".join(f"{what} {median(seconds) * 1e3:.2f}" for what, seconds in side.cpu.items() if any(seconds))
        print(f"  {name:6} {median(side.rates):5.0f} calls/s (median; rounds: {', '.join(f'{r:.0f}' for r in side.rates)})")
        print(f"         CPU per call, median ms: {cpu}")
    print(f"  ratio pyfi/celery: {median(pyfi) / median(celery):.3f} (median rates), "
          f"{median(paired):.3f} (median of per-round ratios)")


def benchmark(args: argparse.Namespace) -> None:
    from pyfi.client.calls import plan_routes

    rid, ids = run_id(), []
    queues: list[str] = [f"bench.bare.{rid}"]
    with stack(args.stack) as (settings, env, home):
        try:
            with Children(marker=home) as children:
                celery_send, app = celery_sender(settings, queues[0])
                bare_pid, pyfi_pid, socket, others = start_sides(args, settings, env, home, rid, children)
                pyfi_send, context = pyfi_sender(settings, socket)
                queues += [route.broker_queue for route in plan_routes(context, [socket])[socket]]
                settle = lambda sent: wait_recorded(settings.db, sent, interval=0.1)  # noqa: E731
                sides = {"celery": Side(celery_send, CpuMeter(bare_pid, None)),
                         "pyfi": Side(pyfi_send, CpuMeter(pyfi_pid, settings.db), settle, others)}
                rounds(args, sides, children, ids)
                report(args, sides)
                app.close()
                context.close()
        finally:
            forget_run(settings, rid, queues, ids)


def start_sides(args: argparse.Namespace, settings: Any, env: dict[str, str], home: Path, rid: str,
                children: Children) -> tuple[int, int, str, dict[str, int]]:
    """The bare worker, and pyfi's worker (run by an agent with ``--agent``): (their pids, the socket, the
    other processes whose CPU counts for pyfi)."""
    if not args.agent:
        _queue, processor, socket = add_processor(settings.db, rid, args.concurrency)
        bare_pid, pyfi_pid = start_workers(children, env, home, rid, processor, args.concurrency, None)
        return bare_pid, pyfi_pid, socket, {}
    _queue, processor, socket = add_processor(settings.db, rid, args.concurrency, sample_repo(home))
    bare_pid = start_bare_worker(children, env, home, rid, args.concurrency)
    agent = children.start("agent", [python(), "-m", "pyfi.cli", "agent", "start", "-n", "bench"], env, home / "agent.log")
    return bare_pid, agents_worker(settings.db, processor, children), socket, {"agent": agent.proc.pid}


def sample_repo(home: Path) -> Path:
    """A git repository holding examples/processors/sample.py, for the agent to clone."""
    repo = home / "sample-repo"
    repo.mkdir()
    shutil.copy(EXAMPLES / "sample.py", repo)
    for argv in (["init", "-q", "-b", "main"], ["add", "sample.py"],
                 ["-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-q", "-m", "sample"]):
        subprocess.run(["git", "-C", str(repo), *argv], check=True)
    return repo


def agents_worker(db_url: str, processor: str, children: Children, timeout: float = 300.0) -> int:
    """The pid of the worker the agent runs for ``processor``, once it runs (the agent deploys it first)."""
    from sqlalchemy import select

    from pyfi.db.engine import session_scope
    from pyfi.db.models import Processor, Worker
    from pyfi.enums import WorkerStatus

    def running() -> int | None:
        check_alive(children)
        with session_scope(db_url) as session:
            query = select(Worker.pid).join(Processor).where(Processor.name == processor,
                                                             Worker.status == WorkerStatus.RUNNING)
            return session.scalar(query)

    return wait_for(running, timeout, interval=0.2, what=f"the agent's worker of {processor} running")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="redis", choices=("redis", "embedded"))
    parser.add_argument("--calls", type=int, default=600, help="calls per burst")
    parser.add_argument("--rounds", type=int, default=6, help="measured bursts per side (order alternates)")
    parser.add_argument("--concurrency", type=int, default=2, help="worker pool processes (both sides)")
    parser.add_argument("--agent", action="store_true", help="pyfi's worker run by a pyfi agent (its CPU counted too)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    exit_on_sigterm()
    with interrupts_reported():
        benchmark(args)


if __name__ == "__main__":
    main()
