"""Changes made while a processor runs: its calls and its service carry on.

- Calls waiting in a socket's queue when the socket's function changes run
  what the socket says now. A message names the task its socket had when it
  was sent: before the worker's consumer took the task from the socket, a
  fixed typo in ``-t`` made Celery discard the waiting calls ("unregistered
  task"), and a socket moved to another function ran its old one, recorded
  under another socket.
- New code that does not import leaves the worker of the code before it
  serving, with the import error shown next to its status.
"""
from __future__ import annotations

import subprocess
from typing import Any

import pytest
from network import Network, build, wait_for

pytestmark = pytest.mark.slow


def finished(net: Network, call_id: str) -> dict[str, Any] | None:
    """The recorded call once it has finished, with its stored result."""
    listed = net.cli("ls", "call", "--id", call_id, "--result", "--json", check=False)
    if listed.returncode != 0:
        return None  # not recorded yet
    call = net.json("ls", "call", "--id", call_id, "--result")
    return call if call["state"] == "finished" else None


def socket_id(net: Network, name: str) -> str:
    return net.json("ls", "socket", "-n", name)["id"]


def test_waiting_calls_run_the_function_their_socket_has_now(net: Network) -> None:
    names = build(net, {"echo": "echo", "shout": "echo", "typo": "ehco"})
    net.start_agent("node1", None, "--no-spares")
    wait_for(lambda: net.processor("p")["status"] == "running", 60, "p running", interval=0.2)

    # a socket with a misspelt function is not consumed: its calls wait for the fix
    typo_call = net.cli("task", "run", "-s", names["typo"], "-d", '"a"', "--no-wait").stdout.strip()
    net.cli("update", "socket", "-n", names["typo"], "-t", "upper")
    call = wait_for(lambda: finished(net, typo_call), 60, "the call sent before the fix")
    assert call["result"]["value"] == "A" and call["socket_id"] == socket_id(net, names["typo"])

    # a socket moved to another function while its calls wait: they run the new one, under their own socket
    net.cli("proc", "-n", "p", "stop")
    wait_for(lambda: net.processor("p")["status"] == "stopped", 30, "p stopped", interval=0.2)
    moved_call = net.cli("task", "run", "-s", names["shout"], "-d", '"b"', "--no-wait").stdout.strip()
    net.cli("update", "socket", "-n", names["shout"], "-t", "upper")
    net.cli("proc", "-n", "p", "start")
    call = wait_for(lambda: finished(net, moved_call), 60, "the call sent before the move")
    assert call["result"]["value"] == "B", "the call ran the socket's old function"
    assert call["socket_id"] == socket_id(net, names["shout"]) and call["name"] == "sample.upper"
    assert net.cli("task", "run", "-s", names["echo"], "-d", '"c"').stdout.strip() == "c"


def test_new_code_that_does_not_import_leaves_the_old_worker_serving(net: Network) -> None:
    names = build(net, {"echo": "echo"})
    net.start_agent("node1", None, "--no-spares")
    wait_for(lambda: net.processor("p")["status"] == "running", 60, "p running", interval=0.2)
    repo = net.tmp / "repo-p"
    [serving] = [row["commit"] for row in net.json("ls", "workers")["rows"]]
    (repo / "sample.py").write_text("import not_a_module_anywhere\n")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@localhost"]
    subprocess.run(git + ["commit", "-qam", "broken"], check=True)
    broken = subprocess.run(git + ["rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    net.cli("update", "processor", "-n", "p", "-c", broken)

    def error_shown() -> dict | None:
        shown = net.processor("p")
        return shown if "cannot import module 'sample'" in (shown["error"] or "") else None

    shown = wait_for(error_shown, 60, "the new code's import error")
    assert shown["status"] == "running" and "No module named 'not_a_module_anywhere'" in shown["error"], shown
    assert net.cli("task", "run", "-s", names["echo"], "-d", '"still"').stdout.strip() == "still"
    workers = net.cli("ls", "workers").stdout  # which code serves: the commit before the broken one
    assert len(serving) == 40 and serving[:12] in workers and broken[:12] not in workers, workers
