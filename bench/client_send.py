"""Benchmark (not a test): bursts of ``Socket.delay`` calls against Celery's own ``task.delay``.

One run, one broker and result backend, the same function
(``sample.do_something``) and worker concurrency on both sides:

- celery: a plain Celery app's ``task.delay(payload)``, served by a bare
  Celery worker (as in ``throughput.py``);
- pyfi:   ``pyfi.client.Socket(name=...).delay(payload)``, served by a pyfi
  worker (what an agent spawns), which checks each call's signature and
  records it.

A burst sends ``--calls`` calls, then gathers every result with ``.get()``;
its rate is calls over the time from the first send to the last result.
Sides alternate (celery, pyfi, pyfi, celery, ...) for ``--rounds`` rounds
after one unmeasured burst each.

    python bench/client_send.py [--stack redis|embedded] [--calls 600] [--rounds 6]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import EXAMPLES, Children, exit_on_sigterm, forget_run, interrupts_reported, median, run_id, stack  # noqa: E402
from bench.throughput import BARE_TASK, PAYLOAD, add_processor, bare_app, check_alive, start_workers  # noqa: E402

Send = Callable[[str], Any]


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


def burst(send: Send, calls: int, ids: list[str]) -> tuple[float, float]:
    """Send ``calls`` calls, then ``.get()`` each: (calls per second from the first send to the last result,
    this process's CPU seconds per call)."""
    began, cpu = time.perf_counter(), time.process_time()
    handles = [send(PAYLOAD) for _ in range(calls)]
    for handle in handles:
        handle.get(timeout=300)
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
    ids.extend(handle.id for handle in handles)
    return calls / elapsed, cpu / calls


def rounds(args: argparse.Namespace, sides: dict[str, Send], children: Children,
           ids: list[str]) -> dict[str, list[tuple[float, float]]]:
    """One unmeasured burst per side, then ``--rounds`` measured ones, the order alternating."""
    for send in sides.values():
        burst(send, min(args.calls, 100), ids)
    found: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
    for number in range(args.rounds):
        order = list(sides) if number % 2 == 0 else list(reversed(sides))
        for name in order:
            found[name].append(burst(sides[name], args.calls, ids))
            print(f"round {number + 1} {name:6} {found[name][-1][0]:5.0f} calls/s", flush=True)
        check_alive(children)
    return found


def report(args: argparse.Namespace, found: dict[str, list[tuple[float, float]]]) -> None:
    celery, pyfi = ([rate for rate, _ in found[name]] for name in ("celery", "pyfi"))
    paired = [p / c for p, c in zip(pyfi, celery, strict=True)]
    print(f"\nclient send, stack {args.stack}, {time.strftime('%Y-%m-%d %H:%M')}: {args.rounds} rounds x {args.calls} "
          f"calls per side, concurrency {args.concurrency}, {os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}")
    for name, rounds_of_side in found.items():
        rates = [rate for rate, _ in rounds_of_side]
        cpu = median([seconds for _, seconds in rounds_of_side]) * 1e3
        print(f"  {name:6} {median(rates):5.0f} calls/s (median; rounds: {', '.join(f'{r:.0f}' for r in rates)}); "
              f"sender's CPU per call (send and get) {cpu:.2f} ms")
    print(f"  ratio pyfi/celery: {median(pyfi) / median(celery):.3f} (median rates), "
          f"{median(paired):.3f} (median of per-round ratios)")


def benchmark(args: argparse.Namespace) -> None:
    from pyfi.client.calls import plan_routes

    rid, ids = run_id(), []
    queues: list[str] = [f"bench.bare.{rid}"]
    with stack(args.stack) as (settings, env, home):
        try:
            with Children(marker=home) as children:
                queue, processor, socket = add_processor(settings.db, rid, args.concurrency)
                start_workers(children, env, home, rid, processor, args.concurrency, None)
                celery_send, app = celery_sender(settings, queues[0])
                pyfi_send, context = pyfi_sender(settings, socket)
                queues += [route.broker_queue for route in plan_routes(context, [socket])[socket]]
                report(args, rounds(args, {"celery": celery_send, "pyfi": pyfi_send}, children, ids))
                app.close()
                context.close()
        finally:
            forget_run(settings, rid, queues, ids)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="redis", choices=("redis", "embedded"))
    parser.add_argument("--calls", type=int, default=600, help="calls per burst")
    parser.add_argument("--rounds", type=int, default=6, help="measured bursts per side (order alternates)")
    parser.add_argument("--concurrency", type=int, default=2, help="worker pool processes (both sides)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    exit_on_sigterm()
    with interrupts_reported():
        benchmark(args)


if __name__ == "__main__":
    main()
