"""With ``agent start -u nobody``, a build runs the repository's code as nobody, apart, and hands root nothing.

Real agents (root, from a Python every user can run), real git repositories
and real pip builds through an in-tree PEP 517 backend; each repository's
``build_hook.py`` is what its build runs as ``nobody``.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from network import make_repo, wait_for
from runas_harness import NOBODY, RunAsNode, owned_by, package_files, writable_by_others

pytestmark = pytest.mark.slow

SAMPLE = '''
import importlib.metadata, os

def facts(x):
    return {"uid": os.getuid(), "version": importlib.metadata.version("sample"), "x": x}
'''


@pytest.fixture
def drop():
    """A directory every user may write to (as /tmp), where a build or a worker leaves what it saw."""
    path = Path(tempfile.mkdtemp(prefix="pyfi-drop-"))
    path.chmod(0o1777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def node(shared_python, scram_db, redis_url, tmp_path):
    """A network with an agent ``-u nobody`` (started by the test) whose work dir nobody can reach."""
    workdir = Path(tempfile.mkdtemp(prefix="pyfi-workdir-"))
    workdir.chmod(0o755)
    built = RunAsNode(shared_python, scram_db[0], redis_url, tmp_path, workdir / "n1")
    yield built
    built.close()
    shutil.rmtree(workdir, ignore_errors=True)


def test_a_package_with_requirements_deploys_and_stays_roots(node, tmp_path):
    """setup.py/pyproject.toml, requirements.txt and --requirements all build with -u; nothing ends up nobody's."""
    files = package_files(SAMPLE) | {"requirements.txt": "celery\n"}  # satisfied by the host: no index needed
    repo = make_repo(tmp_path / "repo", files)
    node.add(node.alice, "pkg", repo, ("facts",), "--requirements", "kombu, redis>=4,<99")
    node.start()
    node.wait_status("pkg", "running")
    facts = node.call(node.alice, "pkg-facts", "x")
    assert facts == {"uid": NOBODY, "version": "0.1", "x": "x"}  # ran as nobody, with the project pip installed
    venv = next((node.workdir / "venvs").iterdir())
    assert (venv / "lib").glob("python*/site-packages/sample-0.1.dist-info/RECORD")
    assert owned_by(node.workdir, NOBODY) == []
    assert writable_by_others(node.workdir / "repos") == [] and writable_by_others(node.workdir / "venvs") == []
    assert list((node.workdir / "builds").iterdir()) == []


EVIL_HOOK = '''
import glob, json, os, subprocess, sys

DROP = {drop!r}
TARGETS = {targets!r}
RACER = """
import os, sys, time
drop, cwd, targets = sys.argv[1], sys.argv[2], sys.argv[3:]
deadline = time.time() + 90
with open(os.path.join(drop, "beat"), "a") as beat:
    while time.time() < deadline:
        beat.write("."); beat.flush()
        for n, target in enumerate(targets):
            here = os.path.join(cwd, "big", "d%d" % n)
            try:
                os.makedirs(os.path.join(here, "x"), exist_ok=True)
                os.rename(here, "%s.%d" % (here, time.time_ns()))
                os.symlink(target, here)
            except OSError:
                pass
        time.sleep(0.02)
"""


def run():
    cwd = os.getcwd()
    seen = {{"uid": os.getuid(), "gid": os.getgid(), "cwd": cwd, "cwd_owner": os.stat(".").st_uid,
            "cwd_by_path": os.access(cwd, os.R_OK | os.W_OK | os.X_OK),  # what /proc/self/cwd reaches, its path does
            "home_owner": os.stat(os.environ.get("HOME", "/")).st_uid,
            "tmp_owner": os.stat(os.environ.get("TMPDIR", "/tmp")).st_uid,
            "processes": sorted(int(p) for p in os.listdir("/proc") if p.isdigit())}}
    with open("written-by-the-build", "w") as fh:
        fh.write("the build writes in its copy of the checkout")
    site = glob.glob(os.path.join(sys.prefix, "lib", "python*", "site-packages"))[0]
    with open(os.path.join(site, "zz_unlisted.pth"), "w") as fh:  # no RECORD lists it
        fh.write("import os; b'pyfi.worker' in open('/proc/self/cmdline', 'rb').read() and "
                 "open(os.path.join(%r, 'unlisted-ran'), 'w').close()\\n" % DROP)
    with open(os.path.join(DROP, "seen.json"), "w") as fh:
        json.dump(seen, fh)
    subprocess.Popen([sys.executable, "-c", RACER, DROP, cwd, *TARGETS], start_new_session=True,
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
'''


def test_a_build_gets_nothing_of_roots_and_nothing_of_it_outlives_it(node, drop, tmp_path):
    secret = tmp_path / "secret"
    secret.mkdir(mode=0o700)
    (secret / "key").write_text("root's")
    (secret / "key").chmod(0o600)
    home = Path(node.admin.env["PYFI_HOME"])  # the agent's: its settings hold the owner's password
    home.mkdir(mode=0o700, exist_ok=True)
    (home / "owner-secret").write_text("postgresql://owner:secret@localhost/x\n")
    (home / "owner-secret").chmod(0o600)
    before = {path: path.lstat() for path in (secret, secret / "key", home, home / "owner-secret")}
    repo = make_repo(tmp_path / "repo", package_files(SAMPLE, EVIL_HOOK.format(drop=str(drop),
                                                                                  targets=[str(secret), str(home)])))
    node.add(node.alice, "evil", repo, ("facts",))
    node.start()
    node.wait_status("evil", "running")
    seen = json.loads((drop / "seen.json").read_text())
    checkout = next(p for p in (node.workdir / "repos" / "evil").iterdir() if len(p.name) == 40)
    assert (seen["uid"], seen["cwd"], seen["cwd_owner"]) == (NOBODY, str(checkout), NOBODY)  # its copy of it
    assert seen["cwd_by_path"] and seen["gid"] != NOBODY and seen["home_owner"] == seen["tmp_owner"] == NOBODY
    assert len(seen["processes"]) < 10  # its own PID namespace: the build sees no other process
    assert not (checkout / "written-by-the-build").exists() and not (checkout / "big").exists()
    beats = (drop / "beat").stat().st_size
    time.sleep(1.5)
    assert (drop / "beat").stat().st_size == beats, "a process the build started outlived it"
    assert {path: path.lstat() for path in before} == before  # owner, mode, times: untouched
    assert not list(node.workdir.glob("venvs/*/lib/python*/site-packages/zz_unlisted.pth"))
    assert node.call(node.alice, "evil-facts", 1)["uid"] == NOBODY and not (drop / "unlisted-ran").exists()
    assert owned_by(node.workdir, NOBODY) == [] and list((node.workdir / "builds").iterdir()) == []


def test_a_failed_build_leaves_nothing_of_the_workers_user(node, tmp_path):
    hook = "def run():\n    open('left-by-the-build', 'w').close()\n    raise SystemExit('this build fails')\n"
    repo = make_repo(tmp_path / "repo", package_files(SAMPLE, hook))
    node.add(node.alice, "broken", repo, ("facts",))
    node.start()
    error = wait_for(lambda: node.shown("broken")["error"], 120, "the deploy to fail", interval=0.3)
    assert "pip install failed" in error and "\n" not in error
    wait_for(lambda: not list((node.workdir / "builds").iterdir()), 30, "the scratch directory to go")
    assert owned_by(node.workdir, NOBODY) == []
    assert not [path for path in (node.workdir / "venvs").iterdir() if path.is_dir()]  # (its lock file stays)
    assert not list(node.workdir.glob("repos/broken/*/left-by-the-build"))


WATCHER = '''
import glob, os, time

PAYLOAD = "import os; b'pyfi.worker' in open('/proc/self/cmdline', 'rb').read() and open(%r, 'w').close()\\n"


def _build_processes(me):
    """This user's processes that a build runs (pip, its backend, the programs it starts)."""
    found = []
    for pid in os.listdir("/proc"):
        try:
            if pid.isdigit() and int(pid) != os.getpid() and os.stat("/proc/" + pid).st_uid == me:
                command = open("/proc/%s/cmdline" % pid, "rb").read()
                if b"pip" in command or b"sleep" in command:
                    found.append(pid)
        except OSError:
            pass
    return found


def _ways_in(pid, venvs):
    """What this process lets another process of its user open: its directory, its root, its files."""
    opened, targets = [], []
    for link in ("cwd", "root", "environ"):
        try:
            os.listdir("/proc/%s/%s" % (pid, link)) if link != "environ" else open("/proc/%s/environ" % pid).close()
            opened.append("%s/%s" % (pid, link))
        except OSError:
            pass
    try:
        for fd in os.listdir("/proc/%s/fd" % pid):  # (their numbers are listed; what they are is not told)
            try:
                os.stat("/proc/%s/fd/%s" % (pid, fd))
                opened.append("%s/fd/%s" % (pid, fd))
            except OSError:
                pass
    except OSError:
        pass
    if "%s/cwd" % pid in opened:
        targets.append("/proc/%s/cwd" % pid)
    if "%s/root" % pid in opened:
        targets += glob.glob("/proc/%s/root%s/*/" % (pid, venvs))
    return opened, targets


def watch(args):
    """Plant a .pth in every environment built while this runs: by path, or through the build's processes."""
    drop, venvs, me = args["drop"], args["venvs"], os.getuid()
    payload = PAYLOAD % os.path.join(drop, "planted-ran")
    seen, opened, planted = set(), set(), []
    open(os.path.join(drop, "watching"), "w").close()
    deadline = time.time() + args["seconds"]
    while time.time() < deadline and not os.path.exists(os.path.join(drop, "stop")):
        targets = glob.glob(venvs + "/*/")
        for pid in _build_processes(me):
            seen.add(pid)
            found, more = _ways_in(pid, venvs)
            opened.update(found)
            targets += more
        for target in targets:
            for site in glob.glob(os.path.join(target, "lib/python*/site-packages")) + [target]:
                path = os.path.join(site, "zz_planted.pth")
                try:
                    if not os.path.exists(path):
                        with open(path, "w") as fh:
                            fh.write(payload)
                        planted.append(path)
                except OSError:
                    pass
        time.sleep(0.002)
    return {"seen": len(seen), "opened": sorted(opened), "planted": planted}
'''
SLOW_BUILD = '''
import subprocess, time


def run():
    helper = subprocess.Popen(["sh", "-c", "sleep 3"])  # a program other than Python: its /proc is not made private
    time.sleep(4)
    helper.wait()
'''


def test_other_processor_code_cannot_reach_an_environment_being_built(node, drop, tmp_path):
    node.add(node.alice, "watcher", make_repo(tmp_path / "watcher", {"sample.py": WATCHER}), ("watch",))
    node.start()
    node.wait_status("watcher", "running")
    args = json.dumps({"drop": str(drop), "venvs": str(node.workdir / "venvs"), "seconds": 150})
    watching = subprocess.Popen([*node.alice_cli, "task", "run", "-s", "watcher-watch", "-d", args, "--timeout", "170"],
                                env=node.alice.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: (drop / "watching").exists(), 60, "the watcher to watch")
        victim = make_repo(tmp_path / "victim", package_files(SAMPLE, SLOW_BUILD))
        node.add(node.admin, "victim", victim, ("facts",))
        node.wait_status("victim", "running")
        assert node.call(node.admin, "victim-facts", 0)["version"] == "0.1"
    finally:
        (drop / "stop").touch()
        out, err = watching.communicate(timeout=200)
    found = json.loads(out or "null")
    assert found is not None, err
    assert found["planted"] == [] and found["opened"] == [], found
    assert found["seen"] > 0  # it saw the build's processes (pip, its backend, sh and sleep), and opened none
    assert not list(node.workdir.glob("venvs/*/lib/python*/site-packages/zz_planted.pth"))
    assert not (drop / "planted-ran").exists()


def test_only_recorded_files_leave_a_build_and_each_must_match_its_hash(tmp_path):
    import os
    import venv as stdlib_venv

    from pyfi.agent import checkout as co
    from pyfi.agent import venv as pv
    from pyfi.agent.harvest import harvest
    from pyfi.errors import DeployError

    repo = make_repo(tmp_path / "repo", package_files(SAMPLE))
    sha = co.checkout(tmp_path / "repos", "p", str(repo))
    built = pv.venv_of(pv.ensure_venv(co.checkout_path(tmp_path / "repos", "p", sha), sha))  # pip ran in it
    site = pv._site_packages(built).relative_to(built)
    (built / site / "zz_unlisted.pth").write_text("import os\n")

    def fresh() -> Path:
        dest = tmp_path / f"dest{len(list(tmp_path.glob('dest*')))}"
        stdlib_venv.create(dest, system_site_packages=True, with_pip=False, symlinks=True)
        return dest

    dest = fresh()
    assert harvest(built, dest, site, os.getuid()) == 8  # sample.py, its bytecode and the 6 files of its dist-info
    assert (dest / site / "sample.py").is_file() and not (dest / site / "zz_unlisted.pth").exists()
    (built / site / "sample.py").write_text("changed = True\n")
    with pytest.raises(DeployError, match="sample.py does not match the hash"):
        harvest(built, fresh(), site, os.getuid())
    (built / site / "sample.py").unlink()
    (built / site / "sample.py").symlink_to("/etc/passwd")
    with pytest.raises(DeployError, match="lacks .*sample.py"):
        harvest(built, fresh(), site, os.getuid())
