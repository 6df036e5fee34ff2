"""Builds apart: with ``agent start -u USER``, pip builds an environment as USER in a scratch copy no other code reaches.

A build runs the repository's code (its build backend, its ``setup.py``),
so it runs as USER, and the agent (root) must neither hand USER anything of
its own nor let other processor code, also running as USER, into the build.
So for each environment:

- root makes a scratch directory ``<workdir>/builds/<random>/`` (``builds``
  is root's, mode 0700) holding a copy of the checkout (``src``), a copy of
  the new environment (``venv``), a home and a temporary directory, and
  gives those four trees to USER; the checkout and the environment
  themselves stay root's;
- every pip runs as USER, with a group of its own (a group id no name and no
  process has, :func:`build_group`) and ``no_new_privs``, in new mount and
  PID namespaces (``unshare``): there the copies are bound over the
  checkout's and the environment's paths (pip sees and records the real
  paths) and the scratch directory over ``builds``, where ``HOME`` and
  ``TMPDIR`` point; pip's working directory is the copy of the checkout;
- when pip ends, the kernel ends every other process of its PID namespace:
  nothing the build started outlives it;
- root then copies what pip installed into the environment
  (:mod:`pyfi.agent.harvest`) and removes the scratch directory, whatever
  the outcome.

Why a group of its own: the kernel lets a process read another's
``/proc/<pid>/cwd``, ``root``, ``fd`` and ``environ`` only when their user
*and* group ids match (or it holds CAP_SYS_PTRACE). Workers run with USER's
own group, so no processor code can follow a build's process into its
files, whatever program the build runs. Outside the namespaces the
scratch directory is under root's 0700 ``builds``.
"""
from __future__ import annotations

import grp
import json
import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from pyfi.agent import fdtree
from pyfi.errors import DeployError

if TYPE_CHECKING:
    from pyfi.agent.runas import RunAs

BUILDS = "builds"
MARK = "pyfi-build"  # in the build's command line: a stopping agent finds and ends it (pyfi.agent.children)
FAILED = 126  # the helper's exit code when it could not start the build (its reason on stderr)
#: group ids a build may get: below 2**31 (tools read ids as signed), above container and systemd ranges
GROUPS = range(2**31 - 2**16, 2**31 - 1)
# Run by root as the first process of the new namespaces: bind the copies, become USER, run pip. argv: [MARK, spec]
_HELPER = r"""
import ctypes, json, os, sys
spec = json.loads(sys.argv[2])
try:
    libc = ctypes.CDLL(None, use_errno=True)
    for source, target in spec["binds"]:
        if libc.mount(source.encode(), target.encode(), None, 4096, None) != 0:  # MS_BIND
            raise OSError(ctypes.get_errno(), "cannot bind %s on %s" % (source, target))
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        raise OSError(ctypes.get_errno(), "cannot set no_new_privs")
    os.setgroups(spec["groups"])
    os.setresgid(spec["gid"], spec["gid"], spec["gid"])
    os.setresuid(spec["uid"], spec["uid"], spec["uid"])
    os.umask(0o077)
    os.chdir(spec["cwd"])
    os.execv(spec["argv"][0], spec["argv"])
except OSError as exc:
    print("pyfi-build: %s" % exc, file=sys.stderr)
    sys.exit(126)
"""


@dataclass(frozen=True)
class Apart:
    """One build apart: its scratch directory, its user and group, and the real paths its copies stand for."""

    scratch: Path
    runas: RunAs
    gid: int
    checkout: Path
    venv: Path

    @property
    def builds(self) -> Path:
        return self.scratch.parent

    def env(self, base: dict[str, str]) -> dict[str, str]:
        """The build's environment: *base* with a home and a temporary directory of its own."""
        home, tmp = str(self.builds / "home"), str(self.builds / "tmp")
        return {**base, "HOME": home, "TMPDIR": tmp, "XDG_CACHE_HOME": f"{home}/.cache",
                "XDG_CONFIG_HOME": f"{home}/.config", "PIP_NO_CACHE_DIR": "1", "PYTHONNOUSERSITE": "1"}

    def run(self, argv: Sequence[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
        """*argv* run as described in the module docstring; its exit code and output (timeout: TimeoutExpired)."""
        binds = [(self.scratch / "venv", self.venv), (self.scratch / "src", self.checkout), (self.scratch, self.builds)]
        spec = {"binds": [[str(a), str(b)] for a, b in binds], "uid": self.runas.uid, "gid": self.gid,
                "groups": os.getgrouplist(self.runas.user, self.runas.gid), "cwd": str(self.checkout),
                "argv": list(argv)}
        return run_apart(spec, self.env(env), timeout, cwd=self.checkout)  # (cwd: whose build it is, for children)


def run_apart(spec: dict, env: dict[str, str], timeout: float, cwd: Path) -> subprocess.CompletedProcess:
    command = [_unshare(), "--mount", "--pid", "--fork", "--kill-child", "--mount-proc", "--",
               sys.executable, "-I", "-c", _HELPER, MARK, json.dumps(spec)]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, start_new_session=True)


def prepare(builds: Path, runas: RunAs, checkout: Path, venv: Path) -> Apart:
    """A scratch directory under *builds* with USER's copies of *checkout* and *venv* (see the module docstring)."""
    builds.mkdir(mode=0o700, exist_ok=True)
    fd = fdtree.open_dir(builds)
    try:
        os.fchown(fd, os.geteuid(), os.getegid())
        os.fchmod(fd, 0o700)
    finally:
        os.close(fd)
    scratch = builds / secrets.token_hex(16)
    scratch.mkdir(mode=0o700)
    apart = Apart(scratch, runas, build_group(runas), checkout, venv)
    try:
        shutil.copytree(checkout, scratch / "src", symlinks=True)
        shutil.copytree(venv, scratch / "venv", symlinks=True)
        for part in ("home", "tmp"):
            (scratch / part).mkdir(mode=0o700)
        for part in ("src", "venv", "home", "tmp"):  # made by root just now, reached by no one else yet
            fdtree.chown_tree(scratch / part, runas.uid, apart.gid)
        os.chmod(scratch, 0o711)  # (inside the build, over builds: USER passes through to its four trees)
    except BaseException:
        remove(apart)
        raise
    return apart


def remove(apart: Apart) -> None:
    """Remove the scratch directory (descriptor-based: ``shutil.rmtree`` follows no link on Linux)."""
    shutil.rmtree(apart.scratch, ignore_errors=True)


def clear(builds: Path) -> None:
    """Remove the scratch directories an agent that stopped abruptly left behind."""
    if builds.is_dir() and not builds.is_symlink():
        shutil.rmtree(builds, ignore_errors=True)


def build_group(runas: RunAs) -> int:
    """A group id in ``GROUPS`` that no group is named by, no process runs with and this node may use."""
    mapped = _mapped_groups()
    in_use = _groups_in_use()
    for _attempt in range(100):
        gid = secrets.choice(GROUPS)
        if gid != runas.gid and gid not in in_use and any(gid in ids for ids in mapped) and not _named(gid):
            return gid
    raise DeployError(f"no free group id in {GROUPS.start}-{GROUPS.stop - 1} for a build",
                      hint="this node's user namespace must map those group ids; run the agent on the host")


def check(runas: RunAs) -> str:
    """Why builds apart cannot run on this node ('' when they can): the namespaces, the group, the user."""
    try:
        gid = build_group(runas)
    except DeployError as exc:
        return exc.message
    probe = "import os, sys; sys.exit(0 if (os.getuid(), os.getgid()) == (int(sys.argv[1]), int(sys.argv[2])) else 3)"
    spec = {"binds": [], "uid": runas.uid, "gid": gid, "groups": os.getgrouplist(runas.user, runas.gid), "cwd": "/",
            "argv": [sys.executable, "-I", "-c", probe, str(runas.uid), str(gid)]}
    try:
        done = run_apart(spec, {"PATH": os.environ.get("PATH", "")}, 60, cwd=Path("/"))
    except (OSError, DeployError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if done.returncode != 0:
        return (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
    return ""


def _unshare() -> str:
    found = shutil.which("unshare") or ("/usr/bin/unshare" if os.path.exists("/usr/bin/unshare") else None)
    if found is None:
        raise DeployError("unshare is not installed on this node", hint="install util-linux")
    return found


def _mapped_groups() -> list[range]:
    """The group ids this process's user namespace maps (all of them outside one)."""
    try:
        lines = Path("/proc/self/gid_map").read_text().splitlines()
    except OSError:
        return [range(0, 2**32 - 1)]
    return [range(int(first), int(first) + int(count)) for first, _, count in (line.split() for line in lines)]


def _groups_in_use() -> set[int]:
    """Every real, effective, saved and filesystem group id of every process."""
    found: set[int] = set()
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            line = next(line for line in status.read_text().splitlines() if line.startswith("Gid:"))
        except (OSError, StopIteration):
            continue
        found.update(int(gid) for gid in line.split()[1:])
    return found


def _named(gid: int) -> bool:
    try:
        grp.getgrgid(gid)
    except KeyError:
        return False
    return True
