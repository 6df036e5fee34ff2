"""With ``agent start -u nobody``, links a worker leaves in its run directory make the agent (root) read or write nothing.

A worker's run directory is nobody's: its code can put a link wherever the
agent writes the control file or reads the worker's reports and log. A real
agent runs the processor; its code plants links to root's files and to the
agent's own environment (which holds the database owner's password).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from network import make_repo
from runas_harness import RunAsNode

pytestmark = pytest.mark.slow

PLANTER = '''
import os


def _parent(pid):
    return int(open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()[1])


def _ancestor(marker):
    pid = os.getpid()
    while pid > 1:
        argv = open("/proc/%d/cmdline" % pid, "rb").read().split(b"\\0")
        if marker in argv:
            return pid, argv
        pid = _parent(pid)
    raise RuntimeError("no ancestor with %r" % marker)


def plant(targets):
    """Links where the agent writes this worker's control file and reads its problems and its error."""
    worker, argv = _ancestor(b"--control")
    run = os.path.dirname(argv[argv.index(b"--control") + 1].decode())
    agent, _ = _ancestor(b"agent")
    links = {"control.tmp": targets["written"], "control.problems": targets["read"],
             "control.error": "/proc/%d/environ" % agent}
    for name, target in links.items():
        os.symlink(target, os.path.join(run, name))
    return {"run": run, "worker": worker, "agent": agent}
'''


@pytest.fixture
def node(shared_python, scram_db, redis_url, tmp_path):
    workdir = Path(tempfile.mkdtemp(prefix="pyfi-workdir-"))
    workdir.chmod(0o755)
    built = RunAsNode(shared_python, scram_db[0], redis_url, tmp_path, workdir / "n1")
    yield built
    built.close()
    shutil.rmtree(workdir, ignore_errors=True)


def _identity(path: Path) -> tuple:
    info = path.lstat()
    return info.st_ino, info.st_uid, info.st_gid, info.st_mode, info.st_size, info.st_mtime_ns


def shown_for(node: RunAsNode, seconds: float) -> str:
    """Every status and error ``ls processor`` showed for the planter over *seconds*."""
    seen, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        shown = node.shown("planter")
        seen.append(f"{shown['status']}: {shown['error']}")
        time.sleep(0.3)
    return "\n".join(seen)


def test_links_in_a_workers_run_directory_reach_nothing_of_roots(node, scram_db, tmp_path):
    secrets = tmp_path / "secrets"
    secrets.mkdir(mode=0o700)
    written, read = secrets / "written", secrets / "read"
    written.write_text("root's file")
    read.write_text("TOPSECRET of root's")
    for path in (written, read):
        path.chmod(0o600)
    before = _identity(written)
    node.add(node.alice, "planter", make_repo(tmp_path / "repo", {"sample.py": PLANTER}), ("plant",))
    node.start()
    node.wait_status("planter", "running")
    planted = node.call(node.alice, "planter-plant", {"written": str(written), "read": str(read)})
    seen = shown_for(node, 3)  # the agent writes the control file and reads the problems at every turn (0.5 s)
    with contextlib.suppress(ProcessLookupError):
        os.kill(planted["worker"], signal.SIGKILL)  # and reads the error of a worker that died
    seen += "\n" + shown_for(node, 3)
    owner_password = make_url(scram_db[0]).password
    assert owner_password not in seen and "PYFI_DB" not in seen and "TOPSECRET" not in seen, seen
    assert _identity(written) == before and written.read_text() == "root's file"
    assert json.dumps(planted) and Path(planted["run"], "control.tmp").is_symlink()  # (the links stayed in place)
