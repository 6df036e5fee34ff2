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
from pyfi.messaging.redis_transport import HOLDERS_KEY

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
    [(worker, run_dir)] = [(row["pid"], row["workdir"]) for row in net.json("ls", "workers")["rows"]]
    os.kill(worker, signal.SIGKILL)  # the main process only: its pool process, running the call, is left behind
    wait_for(lambda: finished(net, call_id), 60, "the call to be run again (not after the 300 s visibility timeout)",
             interval=0.2)
    assert len(marker.read_text().split()) == 2
    assert postruns(net, call_id) == 1, "the pool process left behind finished it too"
    holder = f"node1/{Path(run_dir).name}"  # (an agent's worker holds calls under its agent's name)
    holders = redis.Redis.from_url(net.env["PYFI_BROKER"]).hvals(HOLDERS_KEY)
    assert holder.encode() not in holders
    assert f"gave back 1 call(s) held by the killed worker of p (pid {worker}) {holder}" in net.agent_log("node1")



def consumer(redis_url: str, holder: str, **options: str):  # noqa: ANN201 - a kombu Connection
    from kombu import Connection

    from pyfi.messaging.redis_transport import Transport

    return Connection(redis_url, transport=Transport, transport_options={"pyfi_holder": holder, **options})


@pytest.mark.parametrize("options", [{}, {"global_keyprefix": "pyfi-test:"}], ids=["plain", "key-prefix"])
def test_a_consumer_notes_what_it_holds_until_it_acknowledges_and_give_back_requeues_the_rest(
        redis_url: str, options: dict) -> None:
    from pyfi.messaging.redis_transport import give_back

    queue, holder = f"pyfi-test-held-{os.getpid()}", f"test-{os.getpid()}"
    prefix = options.get("global_keyprefix", "")
    client = redis.Redis.from_url(redis_url)
    with consumer(redis_url, holder, **options) as conn:
        taken = conn.SimpleQueue(queue)  # the same one throughout: closing it would put back what it holds
        taken.put("first")
        taken.put("second")
        first, second = taken.get(timeout=5), taken.get(timeout=5)

        def held() -> set[bytes]:
            return {tag for tag, by in client.hgetall(prefix + HOLDERS_KEY).items() if by == holder.encode()}

        assert held() == {first.delivery_tag.encode(), second.delivery_tag.encode()}
        first.ack()
        assert held() == {second.delivery_tag.encode()}
        taken.put("third")  # sent after the second was taken: it waits behind it
        with consumer(redis_url, "the-agent", **options) as agent:
            assert give_back(agent, holder) == 1  # as if the holder had died holding it
        assert held() == set()
        again, third = taken.get(timeout=5), taken.get(timeout=5)
        assert (again.payload, third.payload) == ("second", "third") and held() == {again.delivery_tag.encode(),
                                                                                   third.delivery_tag.encode()}
        again.ack()
        third.ack()
        client.delete(prefix + queue)


def test_a_call_the_visibility_timeout_gave_to_another_worker_is_not_given_back_again(redis_url: str) -> None:
    from pyfi.messaging.redis_transport import give_back

    queue = f"pyfi-test-moved-{os.getpid()}"
    with consumer(redis_url, "dead") as dead, consumer(redis_url, "alive") as alive:
        held = dead.SimpleQueue(queue)
        held.put("call")
        message = held.get(timeout=5)
        alive.default_channel.qos.restore_by_tag(message.delivery_tag)  # what restore_visible does after 300 s
        taken = alive.SimpleQueue(queue).get(timeout=5)
        assert taken.delivery_tag == message.delivery_tag  # kombu keeps a message's tag when it comes back
        with consumer(redis_url, "the-agent") as agent:
            assert give_back(agent, "dead") == 0, "the call would run twice: the live worker holds it"
        taken.ack()
        redis.Redis.from_url(redis_url).delete(queue)


def test_an_idle_consumer_of_several_queues_takes_what_arrives_in_any_of_them(redis_url: str) -> None:
    """It waits on one queue at a time (Redis blocks on one list), in turn: a message in another is taken too."""
    import socket as net_socket

    from kombu import Consumer, Queue

    queues = [Queue(f"pyfi-test-turns-{os.getpid()}-{n}") for n in range(3)]
    got: list[str] = []
    with consumer(redis_url, "turns") as conn, consumer(redis_url, "sender") as sender:
        def take(body: str, message) -> None:  # noqa: ANN001 - kombu's Message
            got.append(body)
            message.ack()

        with Consumer(conn, queues, callbacks=[take]):
            for queue in reversed(queues):
                try:
                    conn.drain_events(timeout=0.2)  # idle: it waits
                except net_socket.timeout:
                    pass
                sender.Producer().publish(queue.name, routing_key=queue.name, declare=[queue])
            wait_for(lambda: _drain_once(conn) or len(got) == 3, 10, "a message from each queue", interval=0)
    client = redis.Redis.from_url(redis_url)
    assert sorted(got) == sorted(queue.name for queue in queues)
    assert b"turns" not in client.hvals(HOLDERS_KEY), "acknowledged: held by no one"
    client.delete(*(queue.name for queue in queues))


def _drain_once(conn) -> None:  # noqa: ANN001 - a kombu Connection
    import socket as net_socket

    try:
        conn.drain_events(timeout=0.1)
    except net_socket.timeout:
        pass
