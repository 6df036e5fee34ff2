"""``GET /metrics``: the network in Prometheus's text format, counted from the database and the broker.

Against ``pyfi api start``: calls sent while no agent runs are pending and
wait in their broker queue; once an agent runs them, they count as finished,
with their run times in the duration histogram, and the agent and its worker
count as running. Prometheus scrapes without a token (docs/access.rst).
"""
from __future__ import annotations

from typing import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from apiserver_calls import Api, open_api
from network import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def api(tmp_path_factory) -> Iterator[Api]:
    yield from open_api(tmp_path_factory.mktemp("api-metrics"), agent=False)


def scrape(api: Api) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of ``GET /metrics`` (asked without a token), by name and labels."""
    answer = httpx.get(f"{api.url}/metrics", timeout=30)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(answer.text) for sample in family.samples}


def value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def test_calls_queue_depths_durations_workers_and_agents(api):
    echo, shout = api.names["echo"], api.names["shout"]
    sent = [api.call("echo", n) for n in range(3)]
    waiting = scrape(api)
    assert all(name.startswith("pyfi_") for name, _labels in waiting)
    assert value(waiting, "pyfi_calls", socket=echo, state="pending") == 3
    assert value(waiting, "pyfi_queue_depth", socket=echo) == 3  # the broker's count
    assert value(waiting, "pyfi_queue_depth", socket=shout) == 0
    assert value(waiting, "pyfi_broker_up") == 1
    assert value(waiting, "pyfi_agents", status="running") is None

    api.net.start_agent("metrics-node")
    for call_id in sent:
        api.ended(call_id)
    ran = wait_for(lambda: (lambda s: s if value(s, "pyfi_calls", socket=shout, state="finished") == 3 else None)(
        scrape(api)), 60, interval=0.5, what="the three shout calls the plug sent, finished")
    assert value(ran, "pyfi_calls", socket=echo, state="finished") == 3
    assert value(ran, "pyfi_calls", socket=echo, state="pending") is None
    assert value(ran, "pyfi_queue_depth", socket=echo) == 0
    assert value(ran, "pyfi_call_duration_seconds_gcount", socket=echo) == 3
    assert value(ran, "pyfi_call_duration_seconds_bucket", socket=echo, le="+Inf") == 3
    assert value(ran, "pyfi_call_duration_seconds_bucket", socket=echo, le="300.0") == 3
    assert value(ran, "pyfi_agents", status="running") == 1
    assert value(ran, "pyfi_workers", processor="p", status="running") == 1


def test_metrics_is_outside_the_api_document(api):
    spec = httpx.get(f"{api.url}/api/openapi.json", timeout=30).json()
    assert "/metrics" not in spec["paths"] and "/api/calls" in spec["paths"]


def test_a_broker_that_does_not_answer_leaves_the_pending_counts(api):
    from prometheus_client import generate_latest

    from network import free_port
    from pyfi.api.metrics import registry_for
    from pyfi.core.context import CoreContext

    api.net.cli("proc", "pause", "-n", "p")
    api.net.wait_status("p", "paused")
    api.call("boom", "held")  # its worker is paused: the call waits
    core = CoreContext({"db": api.net.db_url, "broker": f"redis://127.0.0.1:{free_port()}/0"})  # nothing listens
    text = generate_latest(registry_for(core)).decode()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    assert value(samples, "pyfi_broker_up") == 0
    assert value(samples, "pyfi_calls", socket=api.names["boom"], state="pending") == 1
    assert value(samples, "pyfi_queue_depth", socket=api.names["boom"]) == 1  # the database's count instead
