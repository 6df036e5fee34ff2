"""A deploy called off (new settings, a deleted processor) ends soon and leaves nothing in the way of the next."""
from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from deploying import News, git_children, processor_row
from pyfi.agent import checkout as co
from pyfi.agent import deploy as deploy_module
from pyfi.agent.deploy import Deployer
from pyfi.testing import wait_for

pytestmark = pytest.mark.usefixtures("git_identity")  # (deploying.py)



def test_a_cancel_that_gets_no_thread_still_lets_the_job_end(root: Path, silent_remote: str, monkeypatch) -> None:
    deployer = Deployer(root)
    assert deployer.ready(processor_row(Path("unused"), gitrepo=silent_remote)) is None
    wait_for(git_children, 60, "git to run", interval=0.02)
    start = threading.Thread.start

    def no_cancel_thread(thread: threading.Thread) -> None:
        if thread.name.startswith("pyfi-cancel"):
            raise RuntimeError("can't start new thread")
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", no_cancel_thread)
    deployer.cancel_all_but(set())  # the processor was deleted
    monkeypatch.setattr(threading.Thread, "start", start)
    wait_for(lambda: not deployer.busy(), 15, "the job to end", interval=0.02)


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
        wait_for(lambda: job.ender is not None and not job.ender.is_alive(), 60, "the ending of its git to give up",
                 interval=0.02)
    finally:
        holder.communicate(b"", timeout=10)  # another process's checkout of the same processor ends
    wait_for(lambda: not deployer.busy(), 10, "the called-off job to end", interval=0.02)
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
    wait_for(git_children, 60, "git to run", interval=0.02)
    row.gitrepo = "/elsewhere"
    deployer.ready(row)
    wait_for(lambda: news.count >= 1, 15, "the old deploy to give up", interval=0.02)


@pytest.fixture(autouse=True)
def no_git_left() -> None:
    yield
    wait_for(lambda: not git_children(), 15, "every git of the test to end", interval=0.02)
