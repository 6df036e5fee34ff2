"""Two agents as two hosts: each in a network namespace of its own, with its own hostname and PYFI_HOME.

The hosts reach PostgreSQL, Redis and the processor's git repository (a git
daemon) only over the network, by a service address relayed to this
machine's servers (tests/hosts.py): nothing may rely on one machine's files
or on localhost. Needs root; skips without it, never under CI=true.
"""
from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from conftest import IN_CI
from hosts import Hosts, can_make_hosts
from network import SAMPLE, Network, deployments, free_port, make_repo, serving, wait_for

REDIS_PORT, PG_PORT = 6379, 5432


@pytest.fixture
def git_daemon(tmp_path: Path):
    """A git daemon on this machine's loopback serving tmp_path/repos; yields (base dir, port)."""
    base, port = tmp_path / "repos", free_port()
    base.mkdir()
    daemon = subprocess.Popen(["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={base}",
                               "--listen=127.0.0.1", f"--port={port}", str(base)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: _answers(port), 20, "the git daemon to listen")
    yield base, port
    daemon.terminate()
    daemon.wait(timeout=20)


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.fixture
def hosts(git_daemon):
    why = can_make_hosts()
    if why:
        if IN_CI:
            pytest.fail(f"{why} (CI=true: the two-host test must run)")
        pytest.skip(why)
    made = Hosts(["hosta", "hostb"], [PG_PORT, REDIS_PORT, git_daemon[1]])
    yield made
    made.close()


def over(url: str, hosts: Hosts, port: int) -> str:
    """``url`` with its host and port replaced by the service address and the relay's port for ``port``."""
    parts = urlsplit(url)
    user = parts.netloc.rpartition("@")[0]
    netloc = f"{user + '@' if user else ''}{hosts.service_address}:{hosts.port(port)}"
    return urlunsplit(parts._replace(netloc=netloc))


def host_env(net: Network, hosts: Hosts, home: Path, node: str) -> dict[str, str]:
    env = {k: v for k, v in net.env.items() if not k.startswith("PYFI_")}
    return {**env, "PYFI_HOME": str(home), "PYFI_USER": net.env["PYFI_USER"], "PYFI_TEST_NODE": node,
            "PYFI_DB": over(net.env["PYFI_DB"], hosts, PG_PORT),
            **{key: over(net.env[key], hosts, REDIS_PORT) for key in ("PYFI_BROKER", "PYFI_BACKEND", "PYFI_PUBSUB")}}


@pytest.mark.parametrize("db_kind", ["postgres"])
def test_two_hosts_share_a_processor_and_one_takes_over_when_the_other_dies(net: Network, hosts: Hosts,
                                                                              git_daemon, tmp_path: Path):
    base, daemon_port = git_daemon
    make_repo(base / "flows", {"sample.py": SAMPLE})
    repo = f"git://{hosts.service_address}:{hosts.port(daemon_port)}/flows"
    queue, sock = net.name("q"), net.name("host")
    net.cli("add", "queue", "-n", queue)
    net.cli("add", "processor", "-n", "p", "-m", "sample", "-g", repo, "-w", "2")
    net.cli("add", "socket", "-n", sock, "-q", queue, "-pn", "p", "-t", "host")
    for host, node in zip(hosts.hosts, ("nodeA", "nodeB"), strict=True):
        home = tmp_path / f"home-{host.name}"
        net.agents[node] = host.popen([sys.executable, "-m", "pyfi.cli", "agent", "start", "-n", node],
                                      host_env(net, hosts, home, node), tmp_path / f"agent-{node}.log")
    shown = wait_for(lambda: {r["name"]: r["hostname"] for r in net.json("ls", "nodes")["rows"]}
                     if len(net.json("ls", "nodes")["rows"]) == 2 else None, 60, "both hosts' nodes")
    assert shown == {"nodeA": "hosta", "nodeB": "hostb"}
    net.cli("add", "scheduler", "-n", "s", "-i", "2")
    for node in ("nodeA", "nodeB"):
        net.cli("scheduler", "-n", "s", "add", "--node", node)
    net.start_scheduler("s")
    wait_for(lambda: deployments(net) == {"nodeA": 1, "nodeB": 1}, 60, "one deployment per host")
    wait_for(lambda: serving(net) == {"nodeA": 1, "nodeB": 1}, 120, "one worker process per host")

    seen: set[str] = set()

    def served_by_both() -> bool:
        seen.add(net.cli("task", "run", "-s", sock, "-d", "1").stdout.strip())
        return seen == {"hosta", "hostb"}

    wait_for(served_by_both, 60, "calls served on both hosts", interval=0)
    hosts.hosts[1].kill_all()  # host b dies: its agent and its worker
    net.agents.pop("nodeB").wait(timeout=30)
    wait_for(lambda: deployments(net) == {"nodeA": 2}, 60, "host b's share to move to host a")
    wait_for(lambda: serving(net).get("nodeA") == 2, 60, "host a to serve with two worker processes")
    assert {net.cli("task", "run", "-s", sock, "-d", str(n)).stdout.strip() for n in range(4)} == {"hosta"}
