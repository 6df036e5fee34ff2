"""On Redis, the calls a worker held when it was killed with SIGKILL run again within seconds, not 300 s.

kombu's Redis transport gives an unacknowledged message back only after the
visibility timeout. The agent that sees its worker die gives back what that
worker held (``pyfi.messaging.redis_transport``).
"""
from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import redis
from sqlalchemy import func, select

from network import Network, build, wait_for
from pyfi.db.engine import session_scope
from pyfi.db.models import Call, Event
from pyfi.messaging.redis_transport import held_key

pytestmark = pytest.mark.slow


@pytest.fixture
def db_kind() -> str:
    """PostgreSQL with Redis: the embedded broker and RabbitMQ give such calls back by themselves."""
    return "postgres"


def postruns(net: Network, call_id: str) -> int:
    with session_scope(net.db_url) as session:
        return session.scalar(select(func.count()).select_from(Event)
                              .where(Event.call_id == call_id, Event.name == "postrun"))


def finished(net: Network, call_id: str) -> bool:
    with session_scope(net.db_url) as session:
        call = session.get(Call, call_id)
        return call is not None and str(call.state) == "finished"


def test_the_call_a_killed_worker_ran_is_run_again_at_once(net: Network, tmp_path: Path) -> None:
    names = build(net, {"slow": "slow"})
    marker = tmp_path / "runs.txt"
    net.start_agent("node1", {"PYFI_TEST_MARKER": str(marker)})
    wait_for(lambda: net.processor("p")["status"] == "running", 60, "p running", interval=0.2)
    call_id = net.cli("task", "run", "-s", names["slow"], "-d", "3", "--no-wait").stdout.strip()
    wait_for(lambda: marker.exists() and marker.read_text().strip(), 30, "the call to start")
    [worker] = [row["pid"] for row in net.json("ls", "workers")["rows"]]
    os.kill(worker, signal.SIGKILL)  # the main process only: its pool process, running the call, is left behind
    wait_for(lambda: finished(net, call_id), 60, "the call to be run again (not after the 300 s visibility timeout)",
             interval=0.2)
    assert len(marker.read_text().split()) == 2
    assert postruns(net, call_id) == 1, "the pool process left behind finished it too"
    assert not redis.Redis.from_url(net.env["PYFI_BROKER"]).exists(held_key(worker))
    assert "gave back 1 call(s) held by the killed worker" in net.agent_log("node1")


def test_a_consumer_notes_what_it_holds_until_it_acknowledges_and_give_back_requeues_the_rest(redis_url: str) -> None:
    from kombu import Connection

    from pyfi.messaging.redis_transport import Transport, give_back

    queue = f"pyfi-test-held-{os.getpid()}"
    client = redis.Redis.from_url(redis_url)
    with Connection(redis_url, transport=Transport) as conn:
        consumer = conn.SimpleQueue(queue)  # the same one throughout: closing it would put back what it holds
        consumer.put("first")
        consumer.put("second")
        first, second = consumer.get(timeout=5), consumer.get(timeout=5)
        assert client.scard(held_key(os.getpid())) == 2
        first.ack()
        assert client.smembers(held_key(os.getpid())) == {second.delivery_tag.encode()}
        assert give_back(redis_url, os.getpid()) == 1  # as if this process had died holding it
        assert not client.exists(held_key(os.getpid()))
        again = consumer.get(timeout=5)
        assert again.payload == "second" and client.scard(held_key(os.getpid())) == 1
        again.ack()
        client.delete(queue)
