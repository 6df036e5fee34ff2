"""Queued calls are listed as pending, and `pyfi task cancel` stops a call for good, on real agents and workers."""
from __future__ import annotations

import subprocess

import pytest

from network import PYFI, SAMPLE, Network, make_repo, wait_for


def call(net: Network, call_id: str) -> dict:
    return net.json("ls", "call", "--id", call_id)


def state(net: Network, call_id: str) -> str:
    return call(net, call_id)["state"]


def send(net: Network, socket: str, data: str, *extra: str) -> str:
    return net.cli("task", "run", "-s", socket, "-d", data, "--no-wait", *extra).stdout.strip()


@pytest.fixture
def flow(net: Network) -> Network:
    """Processor p1 with sockets fast (echo), slow and shout (upper), and a plug slow -> shout."""
    repo = make_repo(net.tmp / "repo", {"sample.py": SAMPLE})
    queue = net.name("q")
    net.cli("add", "queue", "-n", queue)
    net.cli("add", "processor", "-n", "p1", "-m", "sample", "-g", str(repo), "-w", "2")
    for socket, task in (("fast", "echo"), ("slow", "slow"), ("shout", "upper")):
        net.cli("add", "socket", "-n", socket, "-q", queue, "-pn", "p1", "-t", task)
    net.cli("add", "plug", "-n", "slow-to-shout", "-q", queue, "-s", "slow", "-t", "shout")
    return net


@pytest.mark.slow
def test_a_cancelled_queued_call_never_runs_once_an_agent_starts(flow: Network) -> None:
    kept, doomed = send(flow, "fast", '"kept"'), send(flow, "fast", '"doomed"')
    in_flow = [send(flow, "fast", f'"{n}"', "--tracking", "flow-1") for n in range(2)]
    pending = {row["id"] for row in flow.json("ls", "calls", "--state", "pending")["rows"]}
    assert {kept, doomed, *in_flow} <= pending  # queued work shows before any agent runs
    said = flow.cli("task", "cancel", "--tracking", "flow-1").stdout
    assert all(f"cancelled call {c} (it was pending)" in said for c in in_flow)

    said = flow.cli("task", "cancel", "--id", doomed[:8]).stdout
    assert f"cancelled call {doomed} (it was pending)" in said
    assert state(flow, doomed) == "cancelled" and call(flow, doomed)["cancelled_by"] == "admin"
    again = flow.cli("task", "cancel", "--id", doomed).stdout
    assert "was cancelled already, by admin" in again  # exit 0: it is what was asked

    flow.start_agent("node1")
    wait_for(lambda: state(flow, kept) == "finished", 90, "the kept call to run", interval=0.3)
    workers = {e["worker"] for e in call(flow, kept)["events"]}
    assert len(workers) == 1 and workers.pop().split("@")[0].isdigit()  # each event names the worker that ran it
    events = wait_for(lambda: [e["name"] for e in call(flow, doomed)["events"]], 30, "the worker to meet it")
    assert events == ["cancelled"] and state(flow, doomed) == "cancelled"
    assert call(flow, doomed)["started"] is None
    for cancelled in in_flow:
        wait_for(lambda c=cancelled: call(flow, c)["events"], 30, "the worker to meet the flow's calls")
        assert state(flow, cancelled) == "cancelled" and call(flow, cancelled)["started"] is None
    line = flow.cli("task", "cancel", "--id", kept, check=False)
    assert line.returncode == 1 and "has ended (finished): nothing to cancel" in line.stderr


@pytest.mark.slow
def test_listen_shows_a_queued_call_as_pending(flow: Network) -> None:
    room = f"{flow.name('q')}.p1"
    listener = subprocess.Popen(PYFI + ["listen", "-n", room, "-c", "task", "--timeout", "4"], env=flow.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert listener.stdout.readline().startswith(f"Listening to {room}")
        call_id = send(flow, "fast", '"queued"')
        out, err = listener.communicate(timeout=60)
    finally:
        listener.kill()
    shown = [line for line in out.splitlines() if call_id in line]
    assert len(shown) == 1 and '"state": "pending"' in shown[0] and '"task": "echo"' in shown[0], (out, err)


@pytest.mark.slow
def test_cancel_terminates_a_running_call_when_asked_and_no_plug_fires(flow: Network) -> None:
    flow.start_agent("node1")
    wait_for(lambda: flow.processor("p1")["status"] == "running", 90, "p1 running", interval=0.3)
    stopped = send(flow, "slow", "30")
    finished = send(flow, "slow", "1.5")
    wait_for(lambda: state(flow, stopped) == "running" and state(flow, finished) == "running", 30, "both running")
    flow.cli("task", "cancel", "--id", stopped, "--terminate")
    flow.cli("task", "cancel", "--id", finished)  # no --terminate: it finishes, and its plug does not fire
    wait_for(lambda: any(e["name"] == "revoked" for e in call(flow, stopped)["events"]), 30, "the call to be stopped")
    assert state(flow, stopped) == "cancelled"
    wait_for(lambda: any(e["name"] == "postrun" for e in call(flow, finished)["events"]), 30, "the other to finish")
    assert state(flow, finished) == "cancelled"
    tree = flow.json("ls", "call", "--id", finished, "--tree")
    assert tree[0]["children"] == []  # slow-to-shout never fired



@pytest.mark.slow
def test_cancel_needs_the_right_cancel_task(flow: Network) -> None:
    call_id = send(flow, "fast", '"x"')
    flow.cli("add", "user", "-n", "joe", "-e", "joe@x", "-p", "pw-joe")
    joe = {"PYFI_USER": "joe", "PYFI_PASSWORD": "pw-joe"}
    refused = Network({**{k: v for k, v in flow.env.items() if k.startswith("PYFI_")}, **joe}, flow.tmp)
    done = refused.cli("task", "cancel", "--id", call_id, check=False)
    assert done.returncode != 0 and "lacks the right CANCEL_TASK" in done.stderr
    assert state(flow, call_id) == "pending"
