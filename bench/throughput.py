"""Benchmark (not a test): calls/s through one pyfi socket vs the same function as a bare Celery task.

Both run side by side in ONE run on the same broker, result backend and
machine, with the same Celery configuration (pyfi.messaging.app.celery_config),
prefork pool and concurrency:

- bare:  a plain Celery app and worker consuming one queue, running
         ``sample.do_something`` (examples/processors/sample.py); no recording,
         no pub/sub;
- pyfi:  a real pyfi worker (``python -m pyfi.worker``, what an agent spawns)
         for a processor with one socket on that function, recording every call
         and its received/prerun/postrun events into the database and publishing
         each lifecycle step on the socket's task channel.

Rounds alternate (bare, pyfi, pyfi, bare, ...) so machine noise hits both;
the rates printed are the medians over rounds. In a round the benchmark keeps
``--window`` calls in flight and measures each call from send to result
available in the result backend, found the same way for both
(``common.Results``: a subscription on Redis, a 10 ms poll on a database).
After every pyfi round it waits until the database holds every call as
finished with its three events (that lag is reported, it is not part of the
pyfi rate, but the CPU it costs is counted). Then ``--latency-calls`` single
calls, alternating bare and pyfi with nothing else in flight, give the idle
latency, while a subscriber checks that pub/sub delivered
received/running/postrun for each pyfi call. CPU per call is read from /proc:
the worker process and its pool, plus (pyfi) the PostgreSQL server processes
of the benchmark's database.

    python bench/throughput.py [--stack redis|rabbitmq|embedded] [--calls 2000] [--rounds 10]
"""
from __future__ import annotations

import argparse
import collections
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.cpu import CpuMeter, cpu_seconds, machine_cpu_seconds, server_pids  # noqa: E402
from bench.records import in_order, wait_recorded  # noqa: E402
from bench.common import (EXAMPLES, Results, USER, Children, exit_on_sigterm, forget_run, interrupts_reported,  # noqa: E402
                          median, percentile, python, run_id, settings_for, stack)

BARE_TASK = "bench.bare.do_something"
PAYLOAD = "Hello World!"


# -- the bare Celery worker (this file, run as a child with --bare-worker) ----------------
def bare_app(settings: Any) -> Any:
    """A plain Celery app with pyfi's Celery configuration and nothing else."""
    from celery import Celery

    from pyfi.messaging.app import celery_config

    app = Celery("bare", set_as_current=False)
    app.conf.update(celery_config(settings))
    if settings.broker.startswith("redis://"):
        app.conf.broker_transport = None  # kombu's own Redis transport: pyfi's notes what each worker holds (a cost)
    return app


def run_bare_worker(queue: str, concurrency: int, prefetch: int | None) -> None:
    """Consume ``queue`` with ``sample.do_something`` as a bare task, as pyfi's worker would (pool, options)."""
    from pyfi.messaging.routing import kombu_queue

    sys.path.insert(0, str(EXAMPLES))
    import sample  # examples/processors/sample.py: the same function the pyfi socket runs

    app = bare_app(settings_for(dict(os.environ)))
    app.conf.task_queues = [kombu_queue(queue)]
    if prefetch:
        app.conf.worker_prefetch_multiplier = prefetch  # as pyfi's worker --prefetch does
    app.task(name=BARE_TASK)(sample.do_something)
    worker = app.Worker(hostname=f"bare.{os.getpid()}@bench", concurrency=concurrency, pool="prefork",
                        queues=[queue], loglevel="WARNING", without_heartbeat=True, without_mingle=True,
                        without_gossip=True, optimization="fair")
    worker.start()


# -- collecting results ------------------------------------------------------------------
# -- the two sides -------------------------------------------------------------------------
@dataclass
class Side:
    """One way of calling the function: how to send a call, where its results show up, who serves it."""

    name: str
    queue: str  # the broker queue its calls go to
    send: Callable[[str], str]
    results: Results
    meter: "CpuMeter"
    settle: Callable[["Side"], float] = lambda side: 0.0  # waits for work left after the last result
    rates: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    idle: list[float] = field(default_factory=list)
    cpu_per_call: list[float] = field(default_factory=list)
    db_cpu_per_call: list[float] = field(default_factory=list)
    role_cpu_per_call: dict[str, list[float]] = field(default_factory=dict)  # main / pool / sidecar
    other_cpu_per_call: dict[str, list[float]] = field(default_factory=dict)  # the servers, this script
    machine_cpu_per_call: list[float] = field(default_factory=list)  # every process, this script included
    lags: list[float] = field(default_factory=list)
    failures: int = 0
    sent: int = 0
    ids: list[str] = field(default_factory=list)  # every call sent, to delete its result at the end
    health: Callable[[], None] = lambda: None  # raises when a worker died


def bare_side(settings: Any, queue: str, worker_pid: int) -> Side:
    """Plain ``send_task`` to the bare worker's queue (declared as pyfi declares its queues)."""
    from pyfi.messaging.routing import kombu_queue

    app = bare_app(settings)
    broker_queue = kombu_queue(queue)

    def send(payload: str) -> str:
        call_id = str(uuid.uuid4())  # like pyfi's send: an id of our own, the AsyncResult dropped
        app.send_task(BARE_TASK, args=[payload], task_id=call_id, queue=broker_queue, routing_key=queue,
                      declare=[broker_queue])
        return call_id

    return Side("bare", queue, send, Results(app), CpuMeter(worker_pid, None))


def pyfi_side(settings: Any, socket: str, worker_pid: int) -> Side:
    """``pyfi.core.tasks.send`` on the socket's routes (planned once, as ``pyfi task run`` does per call), signed."""
    from pyfi.core.access import Actor
    from pyfi.core.keys import user_signer
    from pyfi.core.tasks import plan, send as send_calls
    from pyfi.db.engine import session_scope
    from pyfi.messaging.app import make_app

    with session_scope(settings.db) as session:
        routes = plan(session, Actor(USER), socket)
        signer = user_signer(session, Actor(USER))
    app = make_app(settings, signer=signer)

    def send(payload: str) -> str:
        return send_calls(app, routes, [payload])[0].id

    return Side("pyfi", routes[0].broker_queue, send, Results(app), CpuMeter(worker_pid, settings.db),
                settle=lambda side: wait_recorded(settings.db, side.sent))


# -- driving calls ------------------------------------------------------------------------
@dataclass
class Round:
    calls: int
    elapsed: float
    latencies: list[float]
    failures: int

    @property
    def rate(self) -> float:
        return self.calls / self.elapsed


def drive(side: Side, calls: int, window: int, timeout: float) -> Round:
    """Send ``calls`` calls keeping at most ``window`` in flight; time each from send to result."""
    pending: dict[str, float] = {}
    latencies: list[float] = []
    failures = sent = 0
    began = time.perf_counter()
    deadline = began + timeout
    checked = began
    while sent < calls or pending:
        if time.perf_counter() - checked > 1.0:
            side.health()
            checked = time.perf_counter()
        while sent < calls and len(pending) < window:
            call_id = side.send(PAYLOAD)
            pending[call_id] = time.perf_counter()
            side.ids.append(call_id)
            sent += 1
        for call_id, seen, state in side.results.poll(pending, 0.002 if window > 1 else 0.0005):
            start = pending.pop(call_id, None)
            if start is not None:
                latencies.append(seen - start)
                failures += state != "SUCCESS"
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{side.name}: {len(pending)} calls still pending after {timeout:.0f} s")
    side.sent += calls
    return Round(calls, time.perf_counter() - began, latencies, failures)


def measure_round(side: Side, calls: int, window: int) -> Round:
    """One timed round; CPU is counted until the side settled (pyfi: every call recorded)."""
    before, machine_before = side.meter.sample(), machine_cpu_seconds()
    servers = {pid: cpu_seconds(pid) for pid in server_pids()}
    script = time.process_time()
    result = drive(side, calls, window, timeout=60 + calls / 20)
    side.lags.append(side.settle(side))
    side.machine_cpu_per_call.append((machine_cpu_seconds() - machine_before) / calls)
    side.other_cpu_per_call.setdefault("servers", []).append(
        sum(cpu_seconds(pid) - used for pid, used in servers.items()) / calls)
    side.other_cpu_per_call.setdefault("this script", []).append((time.process_time() - script) / calls)
    for role, seconds in side.meter.used_by_role(before).items():
        side.role_cpu_per_call.setdefault(role, []).append(seconds / calls)
    side.cpu_per_call.append(side.meter.used(before, worker=True) / calls)
    side.db_cpu_per_call.append(side.meter.used(before, worker=False) / calls)
    side.rates.append(result.rate)
    side.latencies.extend(result.latencies)
    side.failures += result.failures
    return result


# -- setup -----------------------------------------------------------------------------------
def add_processor(db_url: str, rid: str, concurrency: int, gitrepo: Path = EXAMPLES) -> tuple[str, str, str]:
    """A queue, a processor running examples/processors/sample.py (from ``gitrepo``, for an agent) and one socket:
    (queue, processor, socket)."""
    from pyfi.core import objects
    from pyfi.core.access import Actor
    from pyfi.core.kinds import kind
    from pyfi.db.engine import session_scope

    queue, processor, socket = f"bench.{rid}", f"benchproc-{rid}", f"benchsock-{rid}"
    actor = Actor(USER)
    with session_scope(db_url) as session:
        objects.add(session, actor, kind("queue"), {"name": queue, "type": "direct"})
        objects.add(session, actor, kind("processor"), {"name": processor, "module": "sample",
                                                         "gitrepo": str(gitrepo), "workers": concurrency})
        objects.add(session, actor, kind("socket"), {"name": socket, "queue": queue, "processor": processor,
                                                     "task": "do_something"})
    return queue, processor, socket


def start_workers(children: Children, env: dict[str, str], home: Path, rid: str, processor: str,
                  concurrency: int, prefetch: int | None) -> tuple[int, int]:
    """The bare and the pyfi worker as subprocesses: their pids (each leads its process group)."""
    extra = ["--prefetch", str(prefetch)] if prefetch else []
    bare = start_bare_worker(children, env, home, rid, concurrency, extra)
    control = home / "control"
    control.write_text("run")
    pyfi = children.start("pyfi worker", [python(), "-m", "pyfi.worker", "-n", processor, "--path", str(EXAMPLES),
                                          "--control", str(control), "--node", "bench", "--credentials-on-stdin",
                                          *extra], env, home / "pyfi-worker.log", cwd=EXAMPLES,
                          stdin_line=agent_credentials(env["PYFI_DB"], processor))
    return bare, pyfi.proc.pid


def start_bare_worker(children: Children, env: dict[str, str], home: Path, rid: str, concurrency: int,
                      extra: Sequence[str] = ()) -> int:
    """The bare Celery worker of queue ``bench.bare.<rid>`` as a subprocess: its pid (it leads its process group)."""
    return children.start("bare worker", [python(), __file__, "--bare-worker", f"bench.bare.{rid}",
                                          "--concurrency", str(concurrency), *extra], env,
                          home / "bare-worker.log").proc.pid


def agent_credentials(db_url: str, processor: str) -> str:
    """The line an agent hands the processor's worker: its own database login (on PostgreSQL) and signing key."""
    from sqlalchemy import select

    from pyfi.agent.handover import worker_credentials
    from pyfi.db.engine import session_scope
    from pyfi.db.models import Processor

    with session_scope(db_url) as session:
        processor_id = session.scalar(select(Processor.id).where(Processor.name == processor))
    return worker_credentials(db_url, processor_id, "bench").line()


def check_alive(children: Children) -> None:
    for child in children.children:
        if not child.alive():
            raise SystemExit(f"{child.name} exited with {child.proc.returncode}:\n{child.tail()}")


# -- pub/sub check ---------------------------------------------------------------------------
def idle_latency(bare: Side, pyfi: Side, calls: int, settings: Any, channel: str) -> collections.Counter:
    """Single calls alternating bare/pyfi; returns the pub/sub states seen on the pyfi socket's channel, as listen would."""
    from pyfi.core.listening import Verifier
    from pyfi.core.network import namespace
    from pyfi.db.engine import session_scope
    from pyfi.messaging.pubsub import subscriber_for

    with session_scope(settings.db) as session:
        prefix = namespace(session)
    verifier = Verifier(settings.db, prefix)
    with subscriber_for(settings.pubsub, channel, prefix) as subscriber:
        for _ in range(calls):
            for side in (bare, pyfi):
                side.idle.extend(drive(side, 1, 1, timeout=30).latencies)
        states: collections.Counter = collections.Counter()
        while (received := subscriber.get_message(timeout=1.0)) is not None:
            for message in verifier.messages(received):
                states[message.data.get("state")] += 1
    return states


# -- report ----------------------------------------------------------------------------------
def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def print_side(side: Side) -> None:
    rates = ", ".join(f"{r:.0f}" for r in side.rates)
    db = f" + database {median(side.db_cpu_per_call) * 1e3:.2f}" if side.db_cpu_per_call and any(side.db_cpu_per_call) else ""
    print(f"  {side.name:5} {median(side.rates):5.0f} calls/s (median; rounds: {rates})")
    print(f"        latency loaded p50 {ms(percentile(side.latencies, 50))} p95 {ms(percentile(side.latencies, 95))}; "
          f"idle p50 {ms(percentile(side.idle, 50))} p95 {ms(percentile(side.idle, 95))}")
    roles = ", ".join(f"{role} {median(v) * 1e3:.2f}" for role, v in sorted(side.role_cpu_per_call.items()))
    others = ", ".join(f"{name} {median(v) * 1e3:.2f}" for name, v in side.other_cpu_per_call.items())
    print(f"        CPU per call: worker {median(side.cpu_per_call) * 1e3:.2f} ms ({roles}){db}; {others}; "
          f"whole machine {median(side.machine_cpu_per_call) * 1e3:.2f}; failed calls {side.failures}")


def report(args: argparse.Namespace, bare: Side, pyfi: Side, states: collections.Counter, ordered: int) -> None:
    paired = [p / b for p, b in zip(pyfi.rates, bare.rates, strict=True)]
    print(f"\nthroughput, stack {args.stack}, {time.strftime('%Y-%m-%d %H:%M')}: {args.rounds} rounds x {args.calls} calls "
          f"per side, {args.window} in flight, prefork concurrency {args.concurrency}, prefetch {args.prefetch or 1}, "
          f"{os.cpu_count()} cpus, "
          f"load average {os.getloadavg()[0]:.1f}")
    print_side(bare)
    print_side(pyfi)
    print(f"  ratio pyfi/bare: {median(pyfi.rates) / median(bare.rates):.3f} (median rates), "
          f"{median(paired):.3f} (median of per-round ratios), {max(pyfi.rates) / max(bare.rates):.3f} (best rates)")
    print(f"  pyfi recording: all {pyfi.sent} calls finished with received/prerun/postrun events, {ordered} of them "
          f"in time order; lag after the last result: median {ms(median(pyfi.lags))}, max {ms(max(pyfi.lags))}")
    print(f"  pub/sub states seen for the {args.latency_calls} idle pyfi calls: {dict(states)}")


# -- main ------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="redis", choices=("redis", "rabbitmq", "embedded"))
    parser.add_argument("--calls", type=int, default=2000, help="calls per round and side")
    parser.add_argument("--rounds", type=int, default=10,
                        help="measured rounds per side (order alternates); on a shared 2-core machine single "
                             "rounds vary by +-15%%, and four rounds gave headline ratios from 0.83 to 1.02")
    parser.add_argument("--window", type=int, default=16, help="calls kept in flight")
    parser.add_argument("--concurrency", type=int, default=2, help="worker pool processes (both sides)")
    parser.add_argument("--prefetch", type=int, help="Celery prefetch multiplier, both sides (default: pyfi's, 1)")
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured calls per side first")
    parser.add_argument("--latency-calls", type=int, default=200, help="single calls per side for idle latency")
    parser.add_argument("--bare-worker", metavar="QUEUE", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def benchmark(args: argparse.Namespace) -> None:
    rid = run_id()
    sides: list[Side] = []
    with stack(args.stack) as (settings, env, home):
        try:
            with Children(marker=home) as children:
                queue, processor, socket = add_processor(settings.db, rid, args.concurrency)
                bare_pid, pyfi_pid = start_workers(children, env, home, rid, processor, args.concurrency,
                                                   args.prefetch)
                sides += [bare_side(settings, f"bench.bare.{rid}", bare_pid), pyfi_side(settings, socket, pyfi_pid)]
                measure(args, settings, children, *sides, f"{queue}.{processor}.task")
        finally:
            forget_run(settings, rid, [s.queue for s in sides], [i for s in sides for i in s.ids])


def measure(args: argparse.Namespace, settings: Any, children: Children, bare: Side, pyfi: Side, channel: str) -> None:
    """Warm up, alternate the timed rounds, time idle calls, report."""
    for side in (bare, pyfi):
        side.health = lambda: check_alive(children)
    for side in (bare, pyfi):
        print(f"warming up {side.name} ({args.warmup} calls)...", flush=True)
        drive(side, args.warmup, args.window, timeout=180)
        side.settle(side)
        check_alive(children)
    for number in range(args.rounds):
        for side in (bare, pyfi) if number % 2 == 0 else (pyfi, bare):
            result = measure_round(side, args.calls, args.window)
            print(f"round {number + 1} {side.name:5} {result.rate:5.0f} calls/s", flush=True)
        check_alive(children)
    states = idle_latency(bare, pyfi, args.latency_calls, settings, channel)
    pyfi.settle(pyfi)
    report(args, bare, pyfi, states, in_order(settings.db))


def main() -> None:
    args = parse_args()
    if args.bare_worker:
        run_bare_worker(args.bare_worker, args.concurrency, args.prefetch)
        return
    exit_on_sigterm()
    with interrupts_reported():
        benchmark(args)


if __name__ == "__main__":
    main()
