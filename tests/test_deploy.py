"""Code deployment for the agent: real git repositories and real venvs, no mocks."""
from __future__ import annotations

import logging
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from deploying import News, commit_files, git, git_children, idle, processor_row
from pyfi.agent import checkout as co
from pyfi.agent import venv as pv
from pyfi.agent import children
from pyfi.agent import deploy as deploy_module
from pyfi.agent.deploy import Deployer
from pyfi.enums import ProcessorStatus
from pyfi.errors import DeployError
from pyfi.testing import wait_for

SECRET_URL = "https://user:s3cret@127.0.0.1:1/x.git"
IN_TREE_BACKEND = '''
import base64, hashlib, zipfile

def _record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    files = {
        "sample.py": open("sample.py", "rb").read(),
        "sample-0.1.dist-info/METADATA": b"Metadata-Version: 2.1\\nName: sample\\nVersion: 0.1\\n",
        "sample-0.1.dist-info/WHEEL":
            b"Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
    }
    record = [_record_line(n, d) for n, d in files.items()] + ["sample-0.1.dist-info/RECORD,,"]
    name = "sample-0.1-py3-none-any.whl"
    with zipfile.ZipFile(f"{wheel_directory}/{name}", "w") as whl:
        for n, d in files.items():
            whl.writestr(n, d)
        whl.writestr("sample-0.1.dist-info/RECORD", "\\n".join(record) + "\\n")
    return name
'''

pytestmark = pytest.mark.usefixtures("git_identity")  # (deploying.py)


def source(root: Path, sha: str) -> str:
    return (co.checkout_path(root, "proc1", sha) / "sample.py").read_text()


# -- checkout ---------------------------------------------------------------


def test_mask_url_hides_passwords_and_tokens() -> None:
    assert co.mask_url("https://user:s3cret@host/x.git") == "https://user:***@host/x.git"
    assert co.mask_url("https://ghp_token@github.com/o/r") == "https://***@github.com/o/r"
    assert co.mask_url("see https://a:b@h/x and https://h/y") == "see https://a:***@h/x and https://h/y"
    assert co.mask_url("git@github.com:o/r.git") == "git@github.com:o/r.git"
    assert co.mask_url("/srv/repo") == "/srv/repo"


def test_checkout_default_branch_head(origin: Path, root: Path) -> None:
    sha = co.checkout(root, "proc1", str(origin))
    assert sha == git(origin, "rev-parse", "main")
    assert "v2" in source(root, sha)
    assert not (co.checkout_path(root, "proc1", sha) / ".git").exists()
    assert co.resolve_remote_commit(str(origin)) == sha


def test_checkout_branch_and_older_commit(origin: Path, root: Path) -> None:
    first = git(origin, "rev-parse", "main~1")
    assert "v1" in source(root, co.checkout(root, "proc1", str(origin), commit=first))
    assert co.checkout(root, "proc1", str(origin), commit=first[:8]) == first
    dev = co.checkout(root, "proc1", str(origin), branch="dev")
    assert dev == git(origin, "rev-parse", "dev") and "dev" in source(root, dev)


def test_new_commit_is_fetched_into_the_same_mirror(origin: Path, root: Path) -> None:
    old = co.checkout(root, "proc1", str(origin), branch="main")
    mirror = co.mirror_path(root, "proc1")
    marker = mirror / "pyfi-test-marker"
    marker.write_text("still here")
    inode = mirror.stat().st_ino
    new = commit_files(origin, {"sample.py": "def do_this(x):\n    return 'v3'\n"}, "v3")
    assert co.resolve_remote_commit(str(origin), "main") == new != old
    assert co.checkout(root, "proc1", str(origin), branch="main") == new
    assert "v3" in source(root, new) and "v2" in source(root, old)
    assert marker.read_text() == "still here" and mirror.stat().st_ino == inode


def test_a_mirror_left_half_made_by_an_ended_git_init_is_made_again(origin: Path, root: Path) -> None:
    mirror = co.mirror_path(root, "proc1")
    mirror.mkdir(parents=True)
    (mirror / "HEAD").write_text("ref: refs/heads/main\n")  # what `git init` writes first
    (mirror.with_name(mirror.name + ".new")).mkdir()  # and one ended before its rename
    sha = co.checkout(root, "proc1", str(origin))
    assert "v2" in source(root, sha) and not mirror.with_name(mirror.name + ".new").exists()


def test_known_commit_needs_no_network(origin: Path, root: Path, tmp_path: Path) -> None:
    sha = co.checkout(root, "proc1", str(origin))
    first = git(origin, "rev-parse", "main~1")
    origin.rename(tmp_path / "gone")
    assert co.checkout(root, "proc1", str(origin), commit=sha) == sha  # exported already
    assert co.checkout(root, "proc1", str(origin), commit=first) == first  # in the mirror


def test_missing_repo_path(root: Path, tmp_path: Path) -> None:
    with pytest.raises(DeployError, match="repository not found"):
        co.checkout(root, "proc1", str(tmp_path / "no-such-repo"))


def test_credentials_never_appear_in_errors_or_logs(root: Path, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    started = time.monotonic()
    for call in (lambda: co.checkout(root, "proc1", SECRET_URL, timeout=10),
                 lambda: co.resolve_remote_commit(SECRET_URL, "main", timeout=10)):
        with pytest.raises(DeployError) as info:
            call()
        assert "s3cret" not in str(info.value) and "user:***@127.0.0.1:1" in str(info.value)
    assert time.monotonic() - started < 10
    assert "s3cret" not in caplog.text


@pytest.mark.parametrize("kwargs, expected", [
    ({"branch": "nope"}, "branch 'nope' not found"),
    ({"commit": "deadbeef" * 5}, "commit deadbeef"),
    ({"branch": "--upload-pack=touch x"}, "invalid branch"),
    ({"commit": "HEAD; rm"}, "invalid commit"),
])
def test_unknown_or_invalid_refs(origin: Path, root: Path, kwargs: dict, expected: str) -> None:
    with pytest.raises(DeployError, match=expected):
        co.checkout(root, "proc1", str(origin), **kwargs)


def test_unknown_branch_on_ls_remote(origin: Path) -> None:
    with pytest.raises(DeployError, match="branch 'nope' not found"):
        co.resolve_remote_commit(str(origin), "nope")


def test_clean_wipes_work_dirs_and_odd_names_stay_inside(origin: Path, root: Path) -> None:
    sha = co.checkout(root, "../evil/name", str(origin))
    assert co.checkout_path(root, "../evil/name", sha).parent.parent == root
    co.clean(root)
    assert root.is_dir() and list(root.iterdir()) == []


# -- venv -------------------------------------------------------------------


def run_python(python: Path, code: str, cwd: Path) -> str:
    result = subprocess.run([str(python), "-c", code], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def pip_runs(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("running pip")]


def test_venv_for_plain_module_needs_no_pip_and_is_reused(origin: Path, root: Path, tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="pyfi.agent.venv")
    sha = co.checkout(root, "proc1", str(origin))
    started = time.monotonic()
    python = pv.ensure_venv(co.checkout_path(root, "proc1", sha), sha)
    created = time.monotonic() - started
    out = run_python(python, "import sample, celery, pyfi; print(sample.do_this(1))", cwd=tmp_path)
    assert out == "v2" and pip_runs(caplog) == []
    stamp = python.parent.parent / pv.STAMP
    stamp_inode = stamp.stat().st_ino
    started = time.monotonic()
    assert pv.ensure_venv(co.checkout_path(root, "proc1", sha), sha) == python
    reused = time.monotonic() - started
    assert stamp.stat().st_ino == stamp_inode and pip_runs(caplog) == []  # reused as it was: nothing rebuilt
    print(f"venv create {created:.3f}s, reuse {reused * 1000:.2f}ms")


def test_half_built_venv_is_rebuilt(origin: Path, root: Path, tmp_path: Path) -> None:
    sha = co.checkout(root, "proc1", str(origin))
    python = pv.ensure_venv(co.checkout_path(root, "proc1", sha), sha)
    venv_dir = python.parent.parent
    (venv_dir / pv.STAMP).unlink()
    (venv_dir / "leftover").write_text("half-built")
    assert pv.ensure_venv(co.checkout_path(root, "proc1", sha), sha) == python
    assert (venv_dir / pv.STAMP).is_file() and not (venv_dir / "leftover").exists()


def test_setuptools_package_is_importable(origin: Path, root: Path, tmp_path: Path) -> None:
    setup_py = "from setuptools import setup\nsetup(name='sample', version='0.1', py_modules=['sample'])\n"
    commit_files(origin, {"setup.py": setup_py}, "pkg")
    sha = co.checkout(root, "proc1", str(origin))
    python = pv.ensure_venv(co.checkout_path(root, "proc1", sha), sha)
    assert run_python(python, "import sample, celery; print(sample.do_this(0))", cwd=tmp_path) == "v2"


def test_package_with_installed_backend_is_pip_installed(origin: Path, root: Path, tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="pyfi.agent.venv")
    pyproject = '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n'
    commit_files(origin, {"pyproject.toml": pyproject, "backend.py": IN_TREE_BACKEND}, "in-tree backend")
    sha = co.checkout(root, "proc1", str(origin))
    python = pv.ensure_venv(co.checkout_path(root, "proc1", sha), sha)
    where = run_python(python, "import sample; print(sample.__file__)", cwd=tmp_path)
    assert "site-packages" in where and len(pip_runs(caplog)) == 1


def test_requirements_file_and_extra_requirements(origin: Path, root: Path, tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="pyfi.agent.venv")
    commit_files(origin, {"requirements.txt": "celery\n"}, "reqs")  # satisfied by the host: no index needed
    sha = co.checkout(root, "proc1", str(origin))
    checkout_dir = co.checkout_path(root, "proc1", sha)
    plain = pv.ensure_venv(checkout_dir, sha)
    with_extra = pv.ensure_venv(checkout_dir, sha, ["kombu"])
    assert plain != with_extra and len(pip_runs(caplog)) == 3
    run_python(with_extra, "import sample, kombu", cwd=tmp_path)


def test_broken_requirement_raises_and_is_not_cached(origin: Path, root: Path) -> None:
    commit_files(origin, {"requirements.txt": "./nope\n"}, "broken reqs")
    sha = co.checkout(root, "proc1", str(origin))
    for _attempt in range(2):
        with pytest.raises(DeployError, match="nope") as info:
            pv.ensure_venv(co.checkout_path(root, "proc1", sha), sha)
        assert str(info.value).count("\n") == 0 and "ERROR" in str(info.value)


def test_option_like_extra_requirement_is_refused(origin: Path, root: Path) -> None:
    sha = co.checkout(root, "proc1", str(origin))
    with pytest.raises(DeployError, match="pip option"):
        pv.ensure_venv(co.checkout_path(root, "proc1", sha), sha, ["--index-url=http://evil"])


# --- the agent's deployer: never waits on git or pip --------------------------------

def test_ready_deploys_in_the_background_and_tells_when_done(origin: Path, root: Path) -> None:
    news = News()
    deployer = Deployer(root, on_news=news)
    row = processor_row(origin)
    assert deployer.ready(row) is None  # the clone and the venv are being made: no waiting for them
    assert news.count == 0 and deployer.busy()  # it returned before the deploy (a clone and a venv) was done
    news.reach(1)
    deployed = deployer.ready(row)
    assert (deployed.path / "sample.py").read_text().endswith("'v2'\n")
    assert deployer.ready(row) is deployed and not deployer.busy()  # cached: no new job
    assert deployer.deploy(row) is deployed


def test_ready_keeps_the_old_code_while_a_moved_branch_is_deployed(origin: Path, root: Path) -> None:
    news = News()
    deployer = Deployer(root, on_news=news)
    row = processor_row(origin)
    old = deployer.deploy(row)
    old.checked = 0.0  # the head check is due; the branch has not moved
    assert deployer.ready(row) is old
    idle(deployer)
    assert deployer.ready(row) is old and news.count == 1, "a head check that finds nothing new wakes no one"
    new_sha = commit_files(origin, {"sample.py": "def do_this(x):\n    return 'v3'\n"}, "v3")
    old.checked = 0.0
    assert deployer.ready(row) is old  # checking and deploying in the background; the old code still serves
    assert deployer.ready(row, follow=False) is old and deployer.busy()
    news.reach(2)
    new = deployer.ready(row)
    assert new.sha == new_sha != old.sha and (new.path / "sample.py").read_text().endswith("'v3'\n")


def test_a_failed_background_deploy_is_remembered_until_a_retry_is_due(root: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(deploy_module, "RETRY_AFTER", (600.0,))
    news = News()
    deployer = Deployer(root, on_news=news)
    row = processor_row(tmp_path / "no-such-repo")
    assert deployer.ready(row) is None
    news.reach(1)
    for _attempt in range(2):  # remembered: no new attempt until the retry is due
        with pytest.raises(DeployError, match="no-such-repo"):
            deployer.ready(row)
        assert not deployer.busy()
    assert "no-such-repo" in str(deployer.failure(row)) and news.count == 1


def test_a_tree_that_cannot_be_unpacked_is_a_remembered_failure_not_a_retry_loop(origin: Path, root: Path) -> None:
    (origin / "passwd").symlink_to("/etc/passwd")  # the extraction filter refuses links out of the tree
    commit_files(origin, {}, "a link out")
    news = News()
    deployer = Deployer(root, on_news=news)
    row = processor_row(origin)
    assert deployer.ready(row) is None
    news.reach(1)
    with pytest.raises(DeployError, match="cannot unpack"):
        deployer.ready(row)
    assert not deployer.busy() and news.count == 1


def test_stop_ends_a_hanging_git_and_its_job(root: Path, silent_remote: str) -> None:
    news = News()
    deployer = Deployer(root, on_news=news)
    row = processor_row(Path("unused"), gitrepo=silent_remote)
    assert deployer.ready(row) is None
    # (maybe the quick `git init`, with the hanging fetch still to come)
    [git] = wait_for(git_children, 60, "git to run", interval=0.02)
    deployer.stop()
    assert not deployer.busy(), "stop() returned with a deploy still running"
    assert not git_children() and not Path(f"/proc/{git}").exists()
    news.reach(1)
    with pytest.raises(DeployError):
        deployer.ready(row)


def test_stop_ends_a_deploy_that_goes_on_to_its_next_git_step(root: Path, silent_remote: str) -> None:
    news = News()
    deployer = Deployer(root, on_news=news)
    row = processor_row(Path("unused"), gitrepo=silent_remote)
    lock = co.processor_dir(root / "repos", "proc1") / ".lock"
    with co.file_lock(lock):  # the job waits here, before any git runs
        assert deployer.ready(row) is None
        stopper = threading.Thread(target=deployer.stop)
        stopper.start()
        wait_for(lambda: deployer.jobs["p1"].cancelled, 60, "stop() to begin", interval=0.02)
    # stop() found no git to end at first; the job now runs `git init`, then the fetch that hangs
    stopper.join(timeout=10)
    assert not stopper.is_alive() and not deployer.busy() and not git_children()
    news.reach(1)


def test_new_settings_end_the_deploy_of_the_old_ones(origin: Path, root: Path, silent_remote: str) -> None:
    news = News()
    deployer = Deployer(root, on_news=news)
    row = processor_row(Path("unused"), gitrepo=silent_remote)
    assert deployer.ready(row) is None
    [git] = wait_for(git_children, 60, "git to run", interval=0.02)
    row.gitrepo = str(origin)  # the user corrects the repository
    assert deployer.ready(row) is None
    news.reach(1)  # the old deploy gave up at once, not when git's 5 minutes were over
    assert not Path(f"/proc/{git}").exists()
    assert deployer.ready(row) is None  # the new settings are deployed now
    news.reach(2)
    assert (deployer.ready(row).path / "sample.py").exists()


def test_new_settings_end_the_old_deploy_even_before_its_first_git_step(origin: Path, root: Path,
                                                                       silent_remote: str) -> None:
    news = News()
    deployer = Deployer(root, on_news=news)
    row = processor_row(Path("unused"), gitrepo=silent_remote)
    with co.file_lock(co.processor_dir(root / "repos", "proc1") / ".lock"):  # the job waits here, before any git
        assert deployer.ready(row) is None
        row.gitrepo = str(origin)
        assert deployer.ready(row) is None and deployer.jobs["p1"].cancelled
    # nothing to end when it was cancelled; the job now runs `git init`, then the fetch that hangs
    wait_for(lambda: news.count >= 1, 15, "the old deploy to give up", interval=0.02)
    assert not git_children()
    assert deployer.deploy(row).sha


def test_deploy_ahead_deploys_stopped_processors_once_one_at_a_time(origin: Path, tmp_path: Path) -> None:
    from pyfi.agent.agent import Agent
    from pyfi.config import resolve

    agent = Agent(resolve({}, {"PYFI_HOME": str(tmp_path / "home")}), name="n1", workdir=tmp_path / "agent", spares=3)
    broken = processor_row(tmp_path / "no-such-repo", id="a", name="a")
    good = processor_row(origin, id="b", name="b")
    running = processor_row(origin, id="c", name="c", requested_status=ProcessorStatus.RUNNING)
    wanted = [running, good, broken]
    agent.deploy_ahead(wanted)
    assert agent.deployer.deploying() == ["a"]  # by name, one at a time, stopped ones only
    agent.deploy_ahead(wanted)
    assert agent.deployer.deploying() == ["a"]
    idle(agent.deployer)
    agent.deploy_ahead(wanted)  # the broken one is left for its start to retry and show
    assert agent.deployer.deploying() == ["b"]
    idle(agent.deployer)
    agent.deployer.current(good).checked = 0.0
    agent.deploy_ahead(wanted)  # code deployed ahead is not kept following its branch
    assert not agent.deployer.busy() and agent.deployer.current(running) is None


def test_the_deploy_of_a_deleted_processor_is_ended(origin: Path, root: Path, silent_remote: str) -> None:
    news = News()
    deployer = Deployer(root, on_news=news)
    gone = processor_row(Path("unused"), gitrepo=silent_remote)
    assert deployer.ready(gone) is None
    wait_for(git_children, 60, "git to run", interval=0.02)
    assert deployer.deploying_for(gone) is not None
    deployer.cancel_all_but(set())  # the processor was deleted: its hanging fetch must not hold its work dir
    news.reach(1)
    assert not git_children() and deployer.deploying_for(gone) is None
    again = processor_row(origin, id="p2")  # a new processor of the same name deploys at once
    assert deployer.ready(again) is None
    news.reach(2)
    assert (deployer.ready(again).path / "sample.py").exists()


def test_ending_one_processors_deploy_leaves_another_of_the_same_repository_alone(root: Path, silent_remote: str) -> None:
    deployer = Deployer(root, on_news=News())
    gone = processor_row(Path("unused"), gitrepo=silent_remote)
    kept = processor_row(Path("unused"), gitrepo=silent_remote, id="p2", name="proc2")
    assert deployer.ready(gone) is None and deployer.ready(kept) is None
    kept_dir = co.processor_dir(root / "repos", "proc2")
    wait_for(lambda: children.working_for(children.deploy_children(), kept_dir), 60, "proc2's git to run", interval=0.02)
    wait_for(lambda: len(git_children()) >= 2, 60, "both fetches to run", interval=0.02)
    deployer.cancel_all_but({"p2"})
    wait_for(lambda: deployer.deploying_for(gone) is None, 10, "proc1's deploy to end", interval=0.02)
    assert children.working_for(children.deploy_children(), kept_dir), "proc2's fetch was ended too"
    deployer.stop()


def test_the_import_check_imports_as_the_worker_will_with_its_environment(origin: Path, root: Path) -> None:
    from pyfi.agent.importcheck import AsWorker

    commit_files(origin, {"sample.py": "import os\nSETTING = os.environ['PYFI_ONLY_WORKERS_HAVE']\n"}, "reads a setting")
    row = processor_row(origin)
    with pytest.raises(DeployError, match="cannot import module 'sample': KeyError: 'PYFI_ONLY_WORKERS_HAVE'"):
        Deployer(root / "a").deploy(row)
    env = {**os.environ, "PYFI_ONLY_WORKERS_HAVE": "yes"}
    assert Deployer(root / "b", as_worker=AsWorker(env)).deploy(row).sha
