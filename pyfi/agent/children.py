"""The git and pip processes that deploys run: found, and ended, from the agent's process.

Deploys run in background threads (:mod:`pyfi.agent.deploy`). Each git and
pip they start leads a session of its own, so that ending it takes its
helpers (git-remote-http, pip's build backends) along. The agent ends them
when it stops, and ends a processor's when its deploy is for settings that
are gone; left alone, they would hold the processor's work dirs for minutes.
"""
from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path

from pyfi.agent.importcheck import MARK
from pyfi.agent.sandbox import MARK as BUILD_MARK
from pyfi.worker.processes import proc_stat


@dataclass(frozen=True)
class Child:
    pid: int
    argv: tuple[bytes, ...]
    cwd: Path | None


def deploy_children() -> list[Child]:
    """The git and pip processes this process started that are still running."""
    me = os.getpid()
    found = []
    for proc in Path("/proc").iterdir():
        stat = proc_stat(proc) if proc.name.isdigit() else None
        if stat is not None and stat[1] == me:
            child = _child(proc)
            if child is not None and _is_git_or_pip(child.argv):
                found.append(child)
    return found


def working_for(children: list[Child], work_dir: Path) -> list[Child]:
    """Those working for one processor: every git, pip and import check of its deploys runs inside its work dir.

    (Not "naming its repository": processors sharing a repository would end each other's deploys.)
    """
    return [c for c in children if c.cwd is not None and c.cwd.is_relative_to(work_dir)]


def end(children: list[Child]) -> None:
    for child in children:
        try:
            os.killpg(child.pid, signal.SIGKILL)  # a partial fetch or venv is redone by the next deploy
        except (ProcessLookupError, PermissionError):
            pass


def _child(proc: Path) -> Child | None:
    try:
        argv = tuple((proc / "cmdline").read_bytes().split(b"\0"))
    except OSError:
        return None
    try:
        cwd: Path | None = Path(os.readlink(proc / "cwd"))
    except OSError:
        cwd = None
    return Child(int(proc.name), argv, cwd)


def _is_git_or_pip(argv: tuple[bytes, ...]) -> bool:
    """git, pip, a build apart (``pyfi.agent.sandbox``) or a deploy's import check (``pyfi.agent.importcheck``)."""
    name = Path(argv[0].decode(errors="replace")).name
    return (name == "git" or argv[1:3] == (b"-m", b"pip") or argv[3:4] == (MARK.encode(),)
            or (name == "unshare" and BUILD_MARK.encode() in argv))
