"""Benchmark (not a test): what Celery task events (``agent start --task-events``) cost a pyfi worker.

Two real pyfi workers (``python -m pyfi.worker``, what an agent spawns) run
side by side in ONE run, on the same stack, each for a processor of its own
with one socket on ``sample.do_something``: one with task events on
(``PYFI_TASK_EVENTS=1``), one without. An event receiver (what ``celery
events`` and Flower run) consumes the events meanwhile in a process of its
own, so they are really delivered, and counts them. Rounds alternate (off, on, on, off, ...); after
each round the database has every call recorded, as in bench/throughput.py,
whose driver and CPU meter this uses. The ratio on/off of the median rates is
the cost; a broker that fans out (Redis, RabbitMQ) is needed for events to
leave the worker at all.

    python bench/task_events.py [--stack redis|rabbitmq] [--calls 1000] [--rounds 6]
"""
from __future__ import annotations

import argparse
import collections
import os
import sys
import json
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (EXAMPLES, Children, exit_on_sigterm, forget_run, interrupts_reported, median,  # noqa: E402
                          python, run_id, stack)
from bench.records import wait_recorded  # noqa: E402
from bench.throughput import (Side, add_processor, agent_credentials, check_alive, drive, measure_round,  # noqa: E402
                              pyfi_side)
from pyfi.testing import wait_for  # noqa: E402


def run_receiver(counts: Path) -> None:
    """The event receiver (this file, run as a child with --receiver): task events by type, into ``counts`` each second."""
    from pyfi.config import resolve
    from pyfi.messaging.app import make_app

    app = make_app(resolve({}, dict(os.environ)))
    seen: collections.Counter = collections.Counter()
    written = [time.monotonic()]

    def count(event: dict[str, Any]) -> None:
        seen[event.get("type", "?")] += 1
        if time.monotonic() - written[0] > 0.5:
            write_counts(counts, seen)
            written[0] = time.monotonic()

    with app.connection_for_read() as connection:
        receiver = app.events.Receiver(connection, handlers={"*": count})
        while True:
            try:
                receiver.capture(limit=None, timeout=1.0, wakeup=False)
            except TimeoutError:
                write_counts(counts, seen)


def write_counts(path: Path, seen: collections.Counter) -> None:
    path.with_suffix(".tmp").write_text(json.dumps(seen))
    path.with_suffix(".tmp").replace(path)


def read_counts(path: Path) -> dict[str, int]:
    return json.loads(path.read_text()) if path.exists() else {}


def start_worker(children: Children, env: dict[str, str], home: Path, processor: str, events: bool) -> int:
    control = home / f"control-{processor}"
    control.write_text("run")
    worker_env = {**env, "PYFI_TASK_EVENTS": "1" if events else "0"}
    child = children.start(f"pyfi worker, events {'on' if events else 'off'}",
                           [python(), "-m", "pyfi.worker", "-n", processor, "--path", str(EXAMPLES), "--control",
                            str(control), "--node", "bench", "--credentials-on-stdin"],
                           worker_env, home / f"worker-{processor}.log", cwd=EXAMPLES,
                           stdin_line=agent_credentials(env["PYFI_DB"], processor))
    return child.proc.pid


def all_recorded(db_url: str, sides: list[Side]) -> float:
    """Seconds until every call both sides sent is recorded as finished with its three events."""
    return wait_recorded(db_url, sum(side.sent for side in sides))


def benchmark(args: argparse.Namespace) -> None:
    rid = run_id()
    sides: list[Side] = []
    with stack(args.stack) as (settings, env, home):
        counts = home / "event-counts.json"
        try:
            with Children(marker=home) as children:
                for events in (False, True):
                    _queue, processor, socket = add_processor(settings.db, f"{rid}{'on' if events else 'off'}",
                                                              args.concurrency)
                    side = pyfi_side(settings, socket, start_worker(children, env, home, processor, events))
                    side.name = "on" if events else "off"
                    side.settle = lambda _side: all_recorded(settings.db, sides)
                    side.health = lambda: check_alive(children)
                    sides.append(side)
                if args.receiver:
                    children.start("event receiver", [python(), __file__, "--receiver", str(counts)], env,
                                   home / "receiver.log")
                measure(args, sides, counts)
        finally:
            forget_run(settings, rid, [s.queue for s in sides], [i for s in sides for i in s.ids])


def measure(args: argparse.Namespace, sides: list[Side], counts: Path) -> None:
    off, on = sides
    for side in sides:
        print(f"warming up events {side.name} ({args.warmup} calls)...", flush=True)
        drive(side, args.warmup, args.window, timeout=180)
        side.settle(side)
    if args.receiver:
        wait_for(lambda: read_counts(counts).get("task-succeeded", 0) >= args.warmup, 30,
                 what="the warm-up's task events at the receiver")
    before = read_counts(counts)
    for number in range(args.rounds):
        for side in (off, on) if number % 2 == 0 else (on, off):
            result = measure_round(side, args.calls, args.window)
            print(f"round {number + 1} events {side.name:3} {result.rate:5.0f} calls/s", flush=True)
    expected = before.get("task-succeeded", 0) + args.rounds * args.calls
    if args.receiver:
        wait_for(lambda: read_counts(counts).get("task-succeeded", 0) >= expected, 30,
                 what="every measured call's task-succeeded event at the receiver")
    after = read_counts(counts)
    report(args, off, on, {kind: n - before.get(kind, 0) for kind, n in after.items()})


def report(args: argparse.Namespace, off: Side, on: Side, events: dict[str, int]) -> None:
    paired = [b / a for a, b in zip(off.rates, on.rates, strict=True)]
    print(f"\ntask events, stack {args.stack}, {time.strftime('%Y-%m-%d %H:%M')}: {args.rounds} rounds x {args.calls} "
          f"calls per side, {args.window} in flight, concurrency {args.concurrency}, {os.cpu_count()} cpus, "
          f"load average {os.getloadavg()[0]:.1f}")
    for side in (off, on):
        rates = ", ".join(f"{r:.0f}" for r in side.rates)
        print(f"  events {side.name:3} {median(side.rates):5.0f} calls/s (median; rounds: {rates}); worker CPU per "
              f"call {median(side.cpu_per_call) * 1e3:.2f} ms; failed calls {side.failures}")
    print(f"  ratio on/off: {median(on.rates) / median(off.rates):.3f} (median rates), "
          f"{median(paired):.3f} (median of per-round ratios); worker CPU per call on/off "
          f"{median(on.cpu_per_call) / median(off.cpu_per_call):.3f}")
    seen = f"{dict(sorted(events.items()))}" if args.receiver else "none (--no-receiver)"
    print(f"  events received during the measured rounds: {seen} ({args.rounds * args.calls} calls with events on)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="redis", choices=("redis", "rabbitmq"))
    parser.add_argument("--calls", type=int, default=1000, help="calls per round and side")
    parser.add_argument("--rounds", type=int, default=6, help="measured rounds per side (order alternates)")
    parser.add_argument("--window", type=int, default=16, help="calls kept in flight")
    parser.add_argument("--concurrency", type=int, default=2, help="worker pool processes (both sides)")
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured calls per side first")
    parser.add_argument("--no-receiver", dest="receiver", action="store_false",
                        help="no event receiver: the events are published to no one")
    parser.add_argument("--receiver", dest="receiver_counts", metavar="FILE", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    if args.receiver_counts:
        run_receiver(Path(args.receiver_counts))
        return
    exit_on_sigterm()
    with interrupts_reported():
        benchmark(args)


if __name__ == "__main__":
    main()
