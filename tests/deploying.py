"""What the deployer's tests share (a pytest plugin, see conftest.py).

A repository to deploy, a work root, a remote that never answers, a counter of the deployer's news.
"""
from __future__ import annotations

import socket
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Iterator

import pytest
from git import Git

from pyfi.agent import children
from pyfi.agent.deploy import Deployer
from pyfi.enums import ProcessorStatus
from pyfi.testing import wait_for


@pytest.fixture
def git_identity(monkeypatch, tmp_path: Path) -> None:
    """Commits work without a user's git config, and no config of theirs leaks in."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Test")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "test@example.com")


def git(repo: Path, *args: str) -> str:
    return Git(str(repo)).execute(["git", *args])


def commit_files(repo: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        (repo / name).write_text(textwrap.dedent(text), encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    """A repo on branch main with two commits and a branch dev with a third."""
    repo = tmp_path / "origin"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    commit_files(repo, {"sample.py": "def do_this(x):\n    return 'v1'\n"}, "v1")
    commit_files(repo, {"sample.py": "def do_this(x):\n    return 'v2'\n"}, "v2")
    git(repo, "checkout", "-q", "-b", "dev")
    commit_files(repo, {"sample.py": "def do_this(x):\n    return 'dev'\n"}, "dev")
    git(repo, "checkout", "-q", "main")
    return repo


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "work"


def processor_row(origin: Path, **fields) -> SimpleNamespace:
    row = dict(id="p1", name="proc1", gitrepo=str(origin), branch="main", commit=None, requirements=None, module="sample",
               requested_status=ProcessorStatus.STOPPED)
    return SimpleNamespace(**{**row, **fields})


class News:
    """Counts the deployer's ``on_news`` calls (made from its threads)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1

    def reach(self, count: int) -> None:
        wait_for(lambda: self.count >= count, 60, f"news number {count}", interval=0.02)


def idle(deployer: Deployer) -> None:
    wait_for(lambda: not deployer.busy(), 60, "the background job to end", interval=0.02)


def git_children() -> list[int]:
    return [child.pid for child in children.deploy_children()]


@pytest.fixture
def silent_remote() -> Iterator[str]:
    """A git:// URL whose server accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield f"git://127.0.0.1:{server.getsockname()[1]}/x.git"
