"""A test harness for real pyfi networks: git repos, stacks, agent subprocesses.

Nothing is mocked: agents and workers are real processes, code comes from a
real git repository made in a temp dir, and the stack is either the embedded
default (SQLite everything) or PostgreSQL + Redis (or RabbitMQ as broker).
"""
from __future__ import annotations

import json
import os
import signal
import socket as net_socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from pyfi.testing import wait_for

__all__ = ["wait_for"]  # (the tests take it from here with the network helpers)

PYFI = [sys.executable, "-m", "pyfi.cli"]

SAMPLE = '''
import os, time

def echo(x):
    return x

def upper(x):
    return str(x).upper()

def whoami(x):
    return {"pid": os.getpid(), "node": os.environ.get("PYFI_TEST_NODE"), "x": x}

def slow(x):
    marker = os.environ.get("PYFI_TEST_MARKER")
    if marker:
        with open(marker, "a") as fh:
            fh.write(f"{os.getpid()}\\n")
    time.sleep(float(x))
    return "slept"

def pid_after(x):
    time.sleep(float(x))
    return os.getpid()

def where_after(x):
    time.sleep(float(x))
    return {"worker": os.getppid(), "node": os.environ.get("PYFI_TEST_NODE")}

def chatty(x):
    import logging, sys
    print("hello from", x)
    print("to stderr", file=sys.stderr)
    logging.getLogger("user.code").warning("careful with %s", x)
    return len(str(x))

def boom(x):
    raise ValueError(f"boom {x}")

def host(x):
    import socket
    return socket.gethostname()

def tick():
    import json
    ran = {"node": os.environ.get("PYFI_TEST_NODE"), "pid": os.getpid()}
    marker = os.environ.get("PYFI_TEST_MARKER")
    if marker:
        with open(marker, "a") as fh:
            fh.write(json.dumps(ran) + "\\n")
    return ran
'''


def make_repo(path: Path, files: dict[str, str], message: str = "code") -> Path:
    """A git repository holding ``files`` in one commit on branch main."""
    path.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (path / name).write_text(text)
    git = ["git", "-C", str(path), "-c", "user.name=t", "-c", "user.email=t@localhost"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-q", "-m", message], check=True)
    return path


def stack_env(kind: str, home: Path, db_url: str) -> dict[str, str]:
    """PYFI_* settings for one stack; names are unique so parallel runs never meet."""
    env = {"PYFI_HOME": str(home), "PYFI_DB": db_url, "PYFI_USER": "admin"}
    if kind == "embedded":
        env.update(PYFI_BROKER=f"sqla+sqlite:///{home}/broker.db", PYFI_BACKEND=f"db+sqlite:///{home}/results.db",
                   PYFI_PUBSUB=f"sqlite:///{home}/pubsub.db")
    elif kind == "redis":
        env.update(PYFI_BROKER="redis://localhost:6379/3", PYFI_BACKEND="redis://localhost:6379/4",
                   PYFI_PUBSUB="redis://localhost:6379/5")
    elif kind == "rabbitmq":
        env.update(PYFI_BROKER="amqp://guest:guest@localhost:5672//", PYFI_BACKEND="redis://localhost:6379/4",
                   PYFI_PUBSUB="redis://localhost:6379/5")
    else:
        raise ValueError(kind)
    return env


class Network:
    """One pyfi network under test: its settings, CLI, agents and cleanup."""

    def __init__(self, env: dict[str, str], tmp: Path) -> None:
        self.env = {**os.environ, **env}
        self.tmp = tmp
        self.agents: dict[str, subprocess.Popen] = {}
        self.schedulers: list[subprocess.Popen] = []
        self.suffix = uuid.uuid4().hex[:6]
        self.db_url = env["PYFI_DB"]

    def name(self, base: str) -> str:
        """A name unique to this network (broker queues are shared on Redis)."""
        return f"{base}-{self.suffix}"

    def cli(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60,
            separate: bool = False) -> subprocess.CompletedProcess:
        """Run ``pyfi ARGS``: in this process (fast: the tests poll with it), or as a process of its own."""
        if separate:
            result = subprocess.run(PYFI + list(args), env=self.env, input=input, capture_output=True, text=True,
                                    timeout=timeout)
        else:
            result = self._invoke(list(args), input)
        if check and result.returncode != 0:
            raise AssertionError(f"pyfi {' '.join(args)} exited {result.returncode}: {result.stderr.strip()}")
        return result

    def _invoke(self, args: list[str], input: str | None) -> subprocess.CompletedProcess:
        """The CLI run by click's test runner, with this network's PYFI_* settings and no others."""
        from click.testing import CliRunner

        from pyfi.cli import cli

        settings = {k: v for k, v in self.env.items() if k.startswith("PYFI_")}
        unset = {k: None for k in os.environ if k.startswith("PYFI_") and k not in settings}
        done = CliRunner().invoke(cli, args, input=input, env={**unset, **settings}, catch_exceptions=False)
        return subprocess.CompletedProcess(PYFI + args, done.exit_code, done.stdout, done.stderr)

    def json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--json").stdout)

    def processor(self, name: str) -> dict[str, Any]:
        return self.json("ls", "processor", "-n", name)

    def start_agent(self, node: str, extra_env: dict[str, str] | None = None, *args: str) -> subprocess.Popen:
        log = open(self.tmp / f"agent-{node}.log", "ab")
        env = {**self.env, "PYFI_TEST_NODE": node, **(extra_env or {})}
        proc = subprocess.Popen(PYFI + ["agent", "start", "-n", node, *args], env=env, stdout=log,
                                stderr=subprocess.STDOUT)
        self.agents[node] = proc
        return proc

    def stop_agent(self, node: str, sig: int = signal.SIGTERM, timeout: float = 40) -> int:
        proc = self.agents.pop(node)
        proc.send_signal(sig)
        return proc.wait(timeout=timeout)

    def start_scheduler(self, name: str, log_name: str | None = None) -> subprocess.Popen:
        """``pyfi scheduler start -n NAME``, logging to ``scheduler-LOG_NAME.log``."""
        log = open(self.tmp / f"scheduler-{log_name or name}.log", "ab")
        proc = subprocess.Popen(PYFI + ["scheduler", "start", "-n", name], env=self.env, stdout=log,
                                stderr=subprocess.STDOUT)
        self.schedulers.append(proc)
        return proc

    def scheduler_log(self, log_name: str) -> str:
        path = self.tmp / f"scheduler-{log_name}.log"
        return path.read_text() if path.exists() else ""

    def agent_log(self, node: str) -> str:
        path = self.tmp / f"agent-{node}.log"
        return path.read_text() if path.exists() else ""

    def wait_status(self, processor: str, status: str, timeout: float = 30) -> float:
        """Seconds until ``ls processor`` shows ``status``."""
        start = time.monotonic()
        wait_for(lambda: self.processor(processor)["status"] == status, timeout, what=f"{processor} {status}")
        return time.monotonic() - start

    def close(self) -> None:
        """Kill what the test started: agents, schedulers and workers (a test of a clean stop stops them itself).

        What a killed worker leaves behind is the test's alone: its queues are named for this network, and the
        logins of its PostgreSQL workers are dropped with the database's users (tests/conftest.py).
        """
        for proc in [*self.schedulers, *self.agents.values()]:
            proc.kill()
            proc.wait(timeout=20)
        self.agents.clear()
        kill_workers(self.env["PYFI_HOME"])


def build(net: Network, sockets: dict[str, str], processor: str = "p", *extra: str) -> dict[str, str]:
    """A git repo with the sample module, one queue, one processor, the given sockets (name -> function)."""
    repo = make_repo(net.tmp / f"repo-{processor}", {"sample.py": SAMPLE})
    queue = net.name("q")
    net.cli("add", "queue", "-n", queue)
    net.cli("add", "processor", "-n", processor, "-m", "sample", "-g", str(repo), *extra)
    names = {}
    for socket, function in sockets.items():
        names[socket] = net.name(socket)
        net.cli("add", "socket", "-n", names[socket], "-q", queue, "-pn", processor, "-t", function)
    names["queue"] = queue
    return names


def kill_workers(home: str) -> None:
    """Last resort: no worker of this network may outlive the test."""
    for meta in Path(home).glob("agents/*/run/*/meta.json"):
        try:
            pid = json.loads(meta.read_text())["pid"]
            os.killpg(pid, signal.SIGKILL)
        except (OSError, ValueError, KeyError):
            pass


def child_pids(pid: int) -> list[int]:
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return children


def health(port: int) -> dict | None:
    """What the agent's health endpoint (-p/--port) answers; None while it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as answer:
            return json.loads(answer.read())
    except OSError:
        return None


def answers(url: str) -> bool:
    """Whether ``url`` answers 200 (a server started by the test is up)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


def free_port() -> int:
    with net_socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def deployments(net: Network) -> dict[str, int]:
    """node -> worker processes of processor p's deployments."""
    return {row["hostname"]: row["cpus"] for row in net.json("ls", "deployments", "-r", "100")["rows"]
            if row["processor"] == "p"}


def serving(net: Network, column: str = "concurrency") -> dict[str, int]:
    """node -> concurrency (or another column) of the live workers of processor p, as ``ls workers`` shows them."""
    rows = net.json("ls", "workers", "-r", "100")["rows"]
    return {row["agent"]: row[column] for row in rows if row["processor"] == "p" and row["status"] == "running"}


def pool_processes(main: int) -> list[int]:
    """The pool processes of a worker: its children (forked by any of its threads), but its sidecar."""
    found = []
    for task in Path(f"/proc/{main}/task").iterdir():
        for child in (task / "children").read_text().split():
            if Path(f"/proc/{child}/comm").read_text().strip() != "pyfi-sidecar":
                found.append(int(child))
    return sorted(found)


def results(app, sent: list[str]) -> dict[str, object]:
    """The results stored so far of the calls sent."""
    found = {}
    for call_id in sent:
        meta = app.backend.get_task_meta(call_id)
        if meta.get("status") == "SUCCESS":
            found[call_id] = meta.get("result")
    return found
