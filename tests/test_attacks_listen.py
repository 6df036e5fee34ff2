"""``pyfi listen`` needs READ, shows only messages a processor's worker signed, and hears only its own network.

Anyone who reaches the pub/sub server can publish (``redis-cli publish``),
and Redis pub/sub is server-wide: two networks on one Redis server, on
different database numbers, share every channel unless they are
namespaced.
"""
from __future__ import annotations

import json
import subprocess
import time

import pytest

from network import PYFI, Network, build, wait_for
from pyfi.core import users
from pyfi.core.access import Actor
from pyfi.db.engine import session_scope

pytestmark = pytest.mark.slow


def listener(net: Network, *args: str) -> subprocess.Popen:
    return subprocess.Popen(PYFI + ["listen", *args, "--format", "json", "--timeout", "5"], env=net.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def publish_raw(net: Network, channel: str, payload: str) -> None:
    """What anyone on the pub/sub server can do, without pyfi."""
    url = net.env["PYFI_PUBSUB"]
    if url.startswith("redis"):
        import redis

        redis.Redis.from_url(url).publish(channel, payload)
        return
    import sqlite3
    import time

    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        conn.execute("INSERT INTO messages (channel, data, created) VALUES (?, ?, ?)", (channel, payload, time.time()))


def heard(watching: subprocess.Popen, net: Network, socket: str) -> str | None:
    """Send a call; the first line the listener prints, once it prints one (it is subscribed then)."""
    import select

    net.cli("task", "run", "-s", socket, "-d", '"warm-up"')
    ready, _, _ = select.select([watching.stdout], [], [], 1.0)
    return watching.stdout.readline() if ready else None


def test_listening_needs_read(net: Network):
    with session_scope(net.db_url) as session:
        users.add_user(session, Actor("admin"), "joe", "joe@xyz", "pw-joe")
    env = {**net.env, "PYFI_USER": "joe"}
    done = subprocess.run(PYFI + ["listen", "-n", "*", "-c", "*", "--timeout", "1"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1 and "user 'joe' lacks the right READ" in done.stderr, done.stderr


def test_forged_messages_are_not_shown_and_genuine_ones_are(net: Network):
    names = build(net, {"echo": "echo"})
    room = f"{names['queue']}.p"
    net.start_agent("n1")
    net.wait_status("p", "running", 60)
    with session_scope(net.db_url) as session:
        from pyfi.core.network import namespace

        prefix = namespace(session)
    watching = listener(net, "-n", room, "-c", "task")
    first = wait_for(lambda: heard(watching, net, names["echo"]), 30, "the listener to hear a call")
    forged = {"channel": "task", "state": "postrun", "room": room, "message": "\"forged\"", "call": "forged-call"}
    for channel in (f"{prefix}{room}.task", f"{room}.task"):
        publish_raw(net, channel, json.dumps(forged))
        publish_raw(net, channel, json.dumps({"pyfi": "signed-1", "key": "k", "sig": "00", "messages": "[]"}))
    call_id = net.cli("task", "run", "-s", names["echo"], "-d", '"genuine"', "--no-wait").stdout.strip()
    out, err = watching.communicate(timeout=60)
    shown = [json.loads(line) for line in [first, *out.splitlines()]]
    assert any(m.get("call") == call_id and m["state"] == "postrun" for m in shown), shown
    assert not any(m.get("call") == "forged-call" for m in shown)
    assert f"Warning: ignored a message on {room}.task" in err and err.count("Warning: ignored") == 1


@pytest.mark.parametrize("db_kind", ["postgres"])  # (the embedded pub/sub is a file of each network: nothing shared)
def test_two_networks_on_one_redis_server_never_hear_each_other(net: Network, tmp_path):
    other = second_network(net, tmp_path)
    try:
        theirs = build(other, {"echo": "echo"}, "theirs")
        ours = build(net, {"echo": "echo"})
        other.start_agent("other-node")
        net.start_agent("n1")
        other.wait_status("theirs", "running", 60)
        net.wait_status("p", "running", 60)
        watching = listener(net, "-n", "*", "-c", "*")
        first = wait_for(lambda: heard(watching, net, ours["echo"]), 30, "the listener to hear a call")
        assert other.cli("task", "run", "-s", theirs["echo"], "-d", '"theirs"').stdout.strip() == "theirs"
        assert net.cli("task", "run", "-s", ours["echo"], "-d", '"ours"').stdout.strip() == "ours"
        out, err = watching.communicate(timeout=60)
        shown = [json.loads(line) for line in [first, *out.splitlines()]]
        assert {m["room"] for m in shown} == {f"{ours['queue']}.p"}, shown
        assert theirs["queue"] not in err  # not even received (and dropped as no processor's of ours): namespaced
        assert any(m.get("message") == '"ours"' for m in shown) and not any("theirs" in str(m) for m in shown)
    finally:
        other.close()


def second_network(net: Network, tmp_path) -> Network:
    """Another network (its own SQLite database) whose pub/sub is the same Redis server, on another database number."""
    home = tmp_path / "other-home"
    pubsub = net.env["PYFI_PUBSUB"].rsplit("/", 1)[0] + "/9"
    env = {"PYFI_HOME": str(home), "PYFI_DB": f"sqlite:///{home}/pyfi.db", "PYFI_USER": "admin",
           "PYFI_BROKER": f"sqla+sqlite:///{home}/broker.db", "PYFI_BACKEND": f"db+sqlite:///{home}/results.db",
           "PYFI_PUBSUB": pubsub}
    other = Network(env, tmp_path / "other")
    (tmp_path / "other").mkdir()
    assert other.cli("db", "init").returncode == 0
    return other



class RawCapture:
    """Everything published on one channel from now on, as anyone on the pub/sub server can read it."""

    def __init__(self, net: Network, channel: str) -> None:
        self.url, self.channel = net.env["PYFI_PUBSUB"], channel
        if self.url.startswith("redis"):
            import redis

            self.pubsub = redis.Redis.from_url(self.url).pubsub()
            self.pubsub.subscribe(channel)
            self.pubsub.get_message(timeout=1.0)  # the subscription's confirmation
            self.got: list[str] = []

    def payloads(self, holding: str) -> list[str]:
        """The payloads published so far that hold ``holding``."""
        if not self.url.startswith("redis"):
            import sqlite3

            with sqlite3.connect(self.url.removeprefix("sqlite:///")) as conn:
                rows = conn.execute("SELECT data FROM messages WHERE channel = ? ORDER BY id", (self.channel,))
                return [data for (data,) in rows if holding in data]
        while (message := self.pubsub.get_message(timeout=0.05)) is not None:
            if message["type"] == "message":
                self.got.append(message["data"].decode())
        return [data for data in self.got if holding in data]


def test_envelopes_published_again_or_long_after_are_not_shown(net: Network):
    from pyfi.core.keys import processor_signer
    from pyfi.core.network import namespace
    from pyfi.messaging.pubsub import build_message, encode
    from pyfi.messaging.pubsub.network import seal

    names = build(net, {"echo": "echo"})
    room = f"{names['queue']}.p"
    net.start_agent("n1")
    net.wait_status("p", "running", 60)
    with session_scope(net.db_url) as session:
        channel = f"{namespace(session)}{room}.task"
        signer = processor_signer(session, net.processor("p")["id"])
    capture = RawCapture(net, channel)
    watching = listener(net, "-n", room, "-c", "task")
    first = wait_for(lambda: heard(watching, net, names["echo"]), 30, "the listener to hear a call")
    original = net.cli("task", "run", "-s", names["echo"], "-d", '"original"', "--no-wait").stdout.strip()
    captured = wait_for(lambda: [p for p in capture.payloads(original) if "postrun" in p] and capture.payloads(original),
                        30, "the original call's envelopes")
    for payload in captured:  # published again, as captured: each signature still matches
        publish_raw(net, channel, payload)
    old = build_message(room, "postrun", call="call-of-an-hour-ago", message='"old"')
    publish_raw(net, channel, seal(signer, channel, [encode(old)], sealed=time.time() - 3600))
    genuine = net.cli("task", "run", "-s", names["echo"], "-d", '"genuine"', "--no-wait").stdout.strip()
    out, err = watching.communicate(timeout=60)
    shown = [json.loads(line) for line in [first, *out.splitlines()]]
    assert any(m.get("call") == genuine and m["state"] == "postrun" for m in shown), shown
    assert [m["state"] for m in shown if m.get("call") == original].count("postrun") == 1, shown
    assert not any(m.get("call") == "call-of-an-hour-ago" for m in shown)
    assert "a replay" in err, err
