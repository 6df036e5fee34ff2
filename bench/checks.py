"""What signing a call and checking it cost, per call, measured side by side in one run.

    python bench/checks.py [--calls 20000]

The sender's side: Celery's message for a call, built by an app without a
signer and by one with a signer (``pyfi.messaging.signed_amqp``), the two
alternating in rounds. The worker's side: the gate's check of a signed call
(``pyfi.worker.gate``), with what it reads of keys and rights in its cache,
as in a steady stream of calls. CPU time of this process, in microseconds
per call; nothing is sent anywhere (an embedded database in a temporary
home holds the key and the rights).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from functools import partial
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROUNDS = 6


def setup(home: Path) -> tuple[Any, Any, Any]:
    """An embedded network with one socket: (its route, the admin's signer, the settings)."""
    from pyfi.config import resolve
    from pyfi.core import objects
    from pyfi.core.access import Actor, bootstrap_admin
    from pyfi.core.keys import user_signer
    from pyfi.core.kinds import kind
    from pyfi.core.tasks import plan
    from pyfi.db import migrate
    from pyfi.db.engine import session_scope

    settings = resolve({}, {"PYFI_HOME": str(home), "PYFI_USER": "admin"})
    migrate.upgrade(settings.db)
    admin = Actor("admin")
    with session_scope(settings.db) as session:
        bootstrap_admin(session, "admin")
        objects.add(session, admin, kind("queue"), {"name": "q"})
        objects.add(session, admin, kind("processor"), {"name": "p", "module": "sample", "gitrepo": "/x"})
        objects.add(session, admin, kind("socket"), {"name": "s", "queue": "q", "processor": "p", "task": "echo"})
        [route] = plan(session, admin, "s")
        signer = user_signer(session, admin)
    return route, signer, settings


def per_call(work: Callable[[], Any], calls: int) -> float:
    """CPU microseconds per call of ``work``."""
    start = time.process_time()
    for _ in range(calls):
        work()
    return (time.process_time() - start) / calls * 1e6


def message_factory(app: Any, route: Any) -> Callable[[], Any]:
    """Builds one call's message as ``send_task`` does (the headers merged in as Celery merges them)."""
    def build() -> Any:
        call_id = str(uuid.uuid4())
        headers = route.headers()
        message = app.amqp.create_task_message(call_id, route.task_name, ["Hello World!"], {}, root_id=call_id,
                                               headers=headers)
        message.headers.update(headers)
        return message
    return build


class Received:
    """What the gate reads of a kombu message."""

    def __init__(self, message: Any) -> None:
        from kombu.utils import json as kombu_json

        self.headers = dict(message.headers)
        self.body = kombu_json.dumps(message.body)

    def decode(self) -> Any:
        from kombu.serialization import loads

        return loads(self.body, "application/json", "utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20000)
    args = parser.parse_args()
    from pyfi.messaging.app import make_app
    from pyfi.worker.gate import Gate

    with tempfile.TemporaryDirectory() as tmp:
        route, signer, settings = setup(Path(tmp))
        plain, signing = (message_factory(make_app(settings, signer=s), route) for s in (None, signer))
        gate = Gate(settings.db, route.processor_id, {route.socket_id}, {route.task_name})
        received = [Received(signing()) for _ in range(args.calls)]
        gate.check(received[0], received[0].headers)  # what it reads of the key and the rights is cached now
        unsigned, signed, checks = [], [], []
        for _ in range(ROUNDS):
            unsigned.append(per_call(plain, args.calls))
            signed.append(per_call(signing, args.calls))
            checks.append(per_call(partial(_checked, gate, iter(received)), args.calls))
    print(f"checks, {time.strftime('%Y-%m-%d %H:%M')}: {ROUNDS} rounds x {args.calls} calls, median CPU per call")
    plain_us, signed_us = statistics.median(unsigned), statistics.median(signed)
    print(f"  building a call's message: unsigned {plain_us:.1f} us, signed {signed_us:.1f} us "
          f"(signing: {signed_us - plain_us:.1f} us)")
    print(f"  the worker's check of a signed call: {statistics.median(checks):.1f} us")


def _checked(gate: Any, waiting: Any) -> None:
    message = next(waiting)
    if gate.check(message, dict(message.headers)) is not None:
        raise SystemExit("the gate refused a call signed for it: the measure is wrong")


if __name__ == "__main__":
    main()
