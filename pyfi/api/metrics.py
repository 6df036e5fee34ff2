"""``GET /metrics``: the network in Prometheus's text format, read from the database at each scrape.

A custom collector (prometheus-client) reads :mod:`pyfi.core.metrics` when
Prometheus asks, so the numbers are the database's, whichever process
recorded them. Series (every name starts with ``pyfi_``):

- ``pyfi_calls{socket,state}``: recorded calls (a gauge: a call moves between states);
- ``pyfi_call_duration_seconds{socket}``: a gauge histogram of how long the calls that started in the last
  :data:`pyfi.core.metrics.DURATION_WINDOW` seconds ran;
- ``pyfi_queue_depth{socket}``: messages waiting in the socket's broker queue (the broker's count; its pending
  calls when the broker cannot be asked, with ``pyfi_broker_up`` 0);
- ``pyfi_workers{processor,status}``, ``pyfi_agents{status}``;
- ``pyfi_scrape_duration_seconds``: what reading all this took.

The route asks for no token (see docs/access.rst): Prometheus scrapes without one, and the server listens on
127.0.0.1 unless told otherwise.
"""
from __future__ import annotations

import time
from typing import Any, Iterator

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeHistogramMetricFamily, GaugeMetricFamily

from pyfi.core import metrics
from pyfi.core.context import CoreContext
from pyfi.db.engine import session_scope

#: upper bounds (seconds) of the duration histogram's buckets
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class NetworkCollector:
    """Reads the network's numbers at scrape time (registered once; ``collect`` runs per scrape)."""

    def __init__(self, core: CoreContext) -> None:
        self.core = core  # its settings are resolved at the first scrape, as the routes' are
        self._broker: Any = None

    def broker(self) -> Any:
        if self._broker is None:
            self._broker = metrics.broker_app(self.core.settings)
        return self._broker

    def describe(self) -> list:
        return []  # nothing is read when the collector is registered

    def collect(self) -> Iterator[Any]:
        began = time.perf_counter()
        with session_scope(self.core.db_url) as session:
            calls = metrics.calls_by_socket_and_state(session)
            durations = metrics.recent_durations(session)
            workers = metrics.workers_by_status(session)
            agents = metrics.agents_by_status(session)
            queues = metrics.broker_queues(session)
        yield counts("pyfi_calls", "Recorded calls by socket and state", ["socket", "state"], calls)
        yield duration_histogram(durations)
        yield from queue_depths(self.broker(), queues, calls)
        yield counts("pyfi_workers", "Worker rows by processor and status (as ls workers shows it)",
                     ["processor", "status"], workers)
        yield counts("pyfi_agents", "Agents by status (as ls agents shows it)", ["status"],
                     {(status,): n for status, n in agents.items()})
        yield GaugeMetricFamily("pyfi_scrape_duration_seconds", "Seconds this scrape took to read the network",
                                value=time.perf_counter() - began)


def counts(name: str, documentation: str, labels: list[str], values: dict[tuple[str, ...], int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(list(key), value)
    return family


def duration_histogram(durations: list[metrics.Duration]) -> GaugeHistogramMetricFamily:
    """Cumulative buckets per socket, as Prometheus histograms are laid out."""
    family = GaugeHistogramMetricFamily(
        "pyfi_call_duration_seconds",
        f"Run time of the calls that started in the last {metrics.DURATION_WINDOW} s and finished", labels=["socket"])
    by_socket: dict[str, list[float]] = {}
    for duration in durations:
        by_socket.setdefault(duration.socket, []).append(duration.seconds)
    for socket, seconds in sorted(by_socket.items()):
        buckets = [(_bound(bound), sum(1 for s in seconds if s <= bound)) for bound in BUCKETS]
        buckets.append(("+Inf", len(seconds)))
        family.add_metric([socket], buckets, gsum_value=sum(seconds))
    return family


def _bound(bound: float) -> str:
    return repr(float(bound))


def queue_depths(broker: Any, queues: dict[str, str], calls: dict[tuple[str, str], int]) -> Iterator[Any]:
    depths = metrics.broker_depths(broker, queues)
    yield GaugeMetricFamily("pyfi_broker_up", "1 when the broker answered this scrape's queue depths, else 0",
                            value=0 if depths is None else 1)
    if depths is None:  # what the database knows: the calls no worker has taken yet
        depths = {name: calls.get((name, "pending"), 0) for name in queues}
    yield counts("pyfi_queue_depth", "Messages waiting in each socket's broker queue", ["socket"],
                 {(name,): n for name, n in depths.items()})


def registry_for(core: CoreContext) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NetworkCollector(core))
    return registry


def mount(app: FastAPI) -> None:
    """Serve ``GET /metrics`` for the app's network (``app.state.core``), outside ``/api`` and the OpenAPI document."""
    registry = registry_for(app.state.core)

    def scrape() -> Response:  # a plain def: FastAPI runs it in a thread, the database reads block no one
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.add_api_route("/metrics", scrape, methods=["GET"], include_in_schema=False)
