"""A deploy called off (new settings, a deleted processor) ends soon and leaves nothing in the way of the next."""
from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
import test_deploy
from test_deploy import News, git_children, poll, processor_row

from pyfi.agent import checkout as co
from pyfi.agent import deploy as deploy_module
from pyfi.agent.deploy import Deployer

# test_deploy's fixtures: a repository to deploy, a work root, a remote that never answers
git_identity, origin, root, silent_remote = (test_deploy.git_identity, test_deploy.origin, test_deploy.root,
                                             test_deploy.silent_remote)


def test_a_cancel_that_gets_no_thread_still_lets_the_job_end(root: Path, silent_remote: str, monkeypatch) -> None:
    deployer = Deployer(root)
    assert deployer.ready(processor_row(Path("unused"), gitrepo=silent_remote)) is None
    poll(git_children, "git to run")
    start = threading.Thread.start

    def no_cancel_thread(thread: threading.Thread) -> None:
        if thread.name.startswith("pyfi-cancel"):
            raise RuntimeError("can't start new thread")
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", no_cancel_thread)
    deployer.cancel_all_but(set())  # the processor was deleted
    monkeypatch.setattr(threading.Thread, "start", start)
    poll(lambda: not deployer.busy(), "the job to end", timeout=15)


def test_a_namesake_added_after_a_delete_is_deployed_once_the_old_job_has_ended(origin: Path, root: Path,
                                                                              silent_remote: str) -> None:
    deployer = Deployer(root)
    old, new = processor_row(Path("unused"), id="p1", gitrepo=silent_remote), processor_row(origin, id="p2")
    with co.file_lock(co.processor_dir(root / "repos", "proc1") / ".lock"):  # the old job waits here
        assert deployer.ready(old) is None
        deployer.cancel_all_but(set())  # p1 is deleted, and a processor of the same name added
        assert deployer.ready(new) is None and deployer.deploying() == ["proc1"]  # the old job's, still ending
    deployed = deployer.deploy(new)
    assert (deployed.path / "sample.py").exists() and deployer.failure(new) is None


def test_a_job_called_off_while_it_waits_for_the_lock_runs_no_git(root: Path, silent_remote: str,
                                                                 monkeypatch) -> None:
    monkeypatch.setattr(deploy_module, "CANCEL_LIMIT", 0.5)  # the ending of its git gives up before the lock is free
    lock = co.processor_dir(root / "repos", "proc1") / ".lock"
    lock.parent.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, sys; f = open(sys.argv[1], 'a'); "
                               "fcntl.flock(f, fcntl.LOCK_EX); print('locked', flush=True); sys.stdin.read()",
                               str(lock)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline() == b"locked\n"
        deployer = Deployer(root)
        row = processor_row(Path("unused"), gitrepo=silent_remote)
        assert deployer.ready(row) is None
        row.gitrepo = "/elsewhere"
        deployer.ready(row)  # calls the old job off; nothing of it runs yet to be ended
        job = deployer.jobs["p1"]
        poll(lambda: job.ender is not None and not job.ender.is_alive(), "the ending of its git to give up")
    finally:
        holder.communicate(b"", timeout=10)  # another process's checkout of the same processor ends
    poll(lambda: not deployer.busy(), "the called-off job to end", timeout=10)
    assert not git_children()


def test_settings_changed_and_changed_back_are_deployed_at_once(origin: Path, root: Path) -> None:
    news = News()
    deployer = Deployer(root, on_news=news)
    row = processor_row(origin)
    with co.file_lock(co.processor_dir(root / "repos", "proc1") / ".lock"):
        assert deployer.ready(row) is None
        row.branch = "dev"
        deployer.ready(row)  # calls the deploy of main off
        row.branch = "main"  # the user takes the edit back
    news.reach(1)
    assert deployer.ready(row) is None, "the call-off is no failure to wait out"
    assert (deployer.deploy(row).path / "sample.py").exists()


def test_a_cancel_ends_the_git_of_a_work_dir_reached_through_a_link(root: Path, silent_remote: str,
                                                                  tmp_path: Path) -> None:
    root.mkdir()
    (tmp_path / "link").symlink_to(root)
    news = News()
    deployer = Deployer(tmp_path / "link", on_news=news)
    row = processor_row(Path("unused"), gitrepo=silent_remote)
    assert deployer.ready(row) is None
    poll(git_children, "git to run")
    row.gitrepo = "/elsewhere"
    deployer.ready(row)
    poll(lambda: news.count >= 1, "the old deploy to give up", timeout=15)


@pytest.fixture(autouse=True)
def no_git_left() -> None:
    yield
    poll(lambda: not git_children(), "every git of the test to end", timeout=15)
