"""An ``agent start -u nobody`` node for tests: a Python nobody can run, a work dir it can reach, real repos and pip.

The agent runs as root from a Python every user can run (tests/shared_python.py),
on the tests' own PostgreSQL cluster and Redis; its processors' code runs as
``nobody``. The CLI runs in this process (tests/network.py's ``Network``).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from network import Network, wait_for
from pyfi.core import users
from pyfi.core.access import Actor
from pyfi.db.engine import session_scope

NOBODY = 65534
#: a PEP 517 backend inside the repository: a wheel of sample.py, after the repository's build_hook.run() if it has one
BACKEND = '''
import base64, hashlib, os, zipfile

def _line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    if os.path.exists("build_hook.py"):
        import build_hook
        build_hook.run()
    files = {
        "sample.py": open("sample.py", "rb").read(),
        "sample-0.1.dist-info/METADATA": b"Metadata-Version: 2.1\\nName: sample\\nVersion: 0.1\\n",
        "sample-0.1.dist-info/WHEEL": b"Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
    }
    record = [_line(n, d) for n, d in files.items()] + ["sample-0.1.dist-info/RECORD,,"]
    name = "sample-0.1-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as whl:
        for n, d in files.items():
            whl.writestr(n, d)
        whl.writestr("sample-0.1.dist-info/RECORD", "\\n".join(record) + "\\n")
    return name
'''
PYPROJECT = '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n'


def package_files(sample: str, hook: str | None = None) -> dict[str, str]:
    """A repository whose project pip builds with the in-tree backend (running ``hook`` as build_hook.py first)."""
    files = {"pyproject.toml": PYPROJECT, "backend.py": BACKEND, "sample.py": sample}
    if hook is not None:
        files["build_hook.py"] = hook
    return files


class RunAsNode:
    """One network with an agent ``-u nobody``: the admin's and alice's CLI, the agent's work dir."""

    def __init__(self, python: Path, owner_url: str, redis_url: str, tmp: Path, workdir: Path) -> None:
        base = redis_url.rsplit("/", 1)[0]
        env = {"PYFI_HOME": str(tmp / "home"), "PYFI_DB": owner_url, "PYFI_USER": "admin",
               "PYFI_BROKER": f"{base}/6", "PYFI_BACKEND": f"{base}/7", "PYFI_PUBSUB": f"{base}/7"}
        self.python, self.tmp, self.workdir = python, tmp, workdir
        self.admin = Network(env, tmp)
        self.alice = Network({**env, "PYFI_USER": "alice", "PYFI_PASSWORD": "pw-alice"}, tmp)
        self.agent: subprocess.Popen | None = None
        self.alice_cli = [sys.executable, "-m", "pyfi.cli"]  # (a call that runs while the test goes on)
        with session_scope(owner_url) as session:
            users.add_user(session, Actor("admin"), "alice", "alice@xyz", "pw-alice")
            for right in ("ADD_PROCESSOR", "ADD_SOCKET", "RUN_TASK", "ADD_QUEUE"):
                users.add_privilege(session, Actor("admin"), right, user="alice")
        self.queue = self.admin.name("q")
        self.admin.cli("add", "queue", "-n", self.queue)

    def add(self, net: Network, name: str, repo: Path, functions: tuple[str, ...], *extra: str) -> None:
        """A processor running module ``sample`` of *repo*, with one socket per function (named after it)."""
        net.cli("add", "processor", "-n", name, "-m", "sample", "-g", str(repo), *extra)
        for function in functions:
            net.cli("add", "socket", "-n", f"{name}-{function}", "-q", self.queue, "-pn", name, "-t", function)

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYFI_")} | {
            k: v for k, v in self.admin.env.items() if k.startswith("PYFI_")}
        log = open(self.tmp / "agent.log", "ab")
        self.agent = subprocess.Popen([str(self.python), "-m", "pyfi.cli", "agent", "start", "-n", "n1", "-u", "nobody",
                                       "--workdir", str(self.workdir)], env=env, stdout=log, stderr=subprocess.STDOUT)

    def shown(self, name: str) -> dict:
        return self.admin.processor(name)

    def wait_status(self, name: str, status: str, timeout: float = 120) -> dict:
        def reached() -> dict | None:
            shown = self.shown(name)
            return shown if shown["status"] == status else None

        try:
            return wait_for(reached, timeout, f"{name} to be {status}", interval=0.3)
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {self.shown(name)['error']}; agent log: {self.log()[-3000:]}") from None

    def call(self, net: Network, socket: str, data: object, timeout: float = 60) -> object:
        done = net.cli("task", "run", "-s", socket, "-d", json.dumps(data), "--timeout", str(timeout),
                       timeout=timeout + 30)
        return json.loads(done.stdout)

    def log(self) -> str:
        path = self.tmp / "agent.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        if self.agent is not None and self.agent.poll() is None:
            self.agent.send_signal(signal.SIGTERM)
            try:
                self.agent.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.agent.kill()


def owned_by(root: Path, uid: int, skip: tuple[str, ...] = ("run", "home")) -> list[str]:
    """Everything under *root* (but its top-level *skip* directories) that *uid* owns."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if here == root:
            dirnames[:] = [d for d in dirnames if d not in skip]
        for name in dirnames + filenames:
            path = here / name
            if path.lstat().st_uid == uid:
                found.append(str(path.relative_to(root)))
    return found


def writable_by_others(root: Path) -> list[str]:
    """Everything under *root* whose group or others may write it (links aside)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            info = (Path(dirpath) / name).lstat()
            if not (info.st_mode & 0o170000 == 0o120000) and info.st_mode & 0o022:
                found.append(str((Path(dirpath) / name).relative_to(root)))
    return found
