"""Everything under $PYFI_HOME is its OS user's alone: the home 0700, every file 0600, from the first byte.

The network runs as pyfi's user does it, in processes of their own, started
with the permissive umask 000, and another OS user (``nobody``) then tries
to read what it left.
"""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import IN_CI
from network import PYFI, SAMPLE, make_repo, wait_for
from pyfi.private import secure_home, write_private

pytestmark = pytest.mark.slow


def loose_umask() -> None:
    os.umask(0)


def pyfi(env: dict[str, str], *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(PYFI + list(args), env=env, input=input, capture_output=True, text=True, timeout=120,
                          preexec_fn=loose_umask)


def modes(home: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(home.stat().st_mode)}
    for path in home.rglob("*"):
        if not path.is_symlink():
            found[str(path.relative_to(home))] = stat.S_IMODE(path.lstat().st_mode)
    return found


@pytest.fixture
def open_place():
    """A directory every user may enter (as /srv or a home with 0755 would be): only pyfi's own modes protect."""
    place = Path(tempfile.mkdtemp(prefix="pyfi-private-"))
    place.chmod(0o755)
    yield place
    shutil.rmtree(place, ignore_errors=True)


def test_a_networks_home_and_files_are_private_under_a_permissive_umask(open_place, tmp_path):
    home = open_place / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYFI_")}
    env.update(PYFI_HOME=str(home), PYFI_USER="admin")
    configured = pyfi(env, "-c", input="\n\n\n\n\n")
    assert configured.returncode == 0, configured.stderr
    assert pyfi(env, "db", "init").returncode == 0
    repo = make_repo(tmp_path / "repo", {"sample.py": SAMPLE})
    for args in (("add", "queue", "-n", "q"), ("add", "processor", "-n", "p", "-m", "sample", "-g", str(repo)),
                 ("add", "socket", "-n", "s", "-q", "q", "-pn", "p", "-t", "chatty")):
        assert pyfi(env, *args).returncode == 0
    with open(tmp_path / "agent.log", "wb") as log:
        agent = subprocess.Popen(PYFI + ["agent", "start", "-n", "n1"], env=env, stdout=log, stderr=subprocess.STDOUT,
                                 preexec_fn=loose_umask)
    try:
        done = pyfi(env, "task", "run", "-s", "s", "-d", '"x"', "--timeout", "60")
        assert done.returncode == 0, done.stderr
        wait_for(lambda: list(home.glob("agents/n1/run/*/worker.log")), 10, "a worker log")
    finally:
        agent.terminate()
        agent.wait(timeout=40)
    found = modes(home)
    for name in ("pyfi.ini", "pyfi.db", "broker.db", "results.db", "pubsub.db"):
        assert name in found, sorted(found)
    assert any(name.endswith("worker.log") for name in found)
    loose = {name: oct(mode) for name, mode in found.items() if mode & 0o077}
    assert loose == {}, loose
    assert found["."] == 0o700
    assert other_user_can_read(home / "pyfi.db") is False


def other_user_can_read(path: Path) -> bool | None:
    """Whether ``nobody`` can read ``path`` (None when this test cannot switch users)."""
    if os.geteuid() != 0 or not shutil.which("runuser"):
        if IN_CI:
            pytest.fail("CI runs as root: this check must run there")
        return None
    done = subprocess.run(["runuser", "-u", "nobody", "--", "cat", str(path)], capture_output=True)
    return done.returncode == 0


def test_an_existing_home_open_to_others_is_closed_by_db_init(open_place):
    home = open_place / "old-home"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYFI_")}
    env.update(PYFI_HOME=str(home), PYFI_USER="admin")
    assert pyfi(env, "db", "init").returncode == 0
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "pyfi.db").stat().st_mode) == 0o600


def test_a_private_file_is_created_0600_not_chmodded_afterwards(tmp_path, monkeypatch):
    """The ini may hold a password: no moment exists when it is readable by others (even under umask 000)."""
    created: list[int] = []
    real_open = os.open

    def watching_open(path, flags, mode=0o777, *args, **kwargs):
        if flags & os.O_CREAT:
            created.append(mode)
        return real_open(path, flags, mode, *args, **kwargs)

    old = os.umask(0)
    try:
        monkeypatch.setattr(os, "open", watching_open)
        write_private(tmp_path / "pyfi.ini", b"[login]\npassword = x\n")
        from pyfi.config import write_ini

        write_ini(tmp_path / "other.ini", {"password": "s3cret"})
    finally:
        os.umask(old)
    assert created == [0o600, 0o600]
    assert stat.S_IMODE((tmp_path / "other.ini").stat().st_mode) == 0o600
    secure_home(tmp_path / "new-home")
    assert stat.S_IMODE((tmp_path / "new-home").stat().st_mode) == 0o700


def test_the_cli_itself_runs_with_a_private_umask(tmp_path):
    """What an agent, a worker, git and pip create inherits it (one check per process is enough)."""
    done = subprocess.run([sys.executable, "-c", "import os, sys; from pyfi.cli import cli;"
                           " sys.argv=['pyfi', 'whoami']; os.umask(0)\ntry:\n cli.main(standalone_mode=False)\n"
                           "except BaseException: pass\nprint(oct(os.umask(0)))"],
                          env={**os.environ, "PYFI_HOME": str(tmp_path / "h")}, capture_output=True, text=True)
    assert done.stdout.strip().splitlines()[-1] == "0o77", done
