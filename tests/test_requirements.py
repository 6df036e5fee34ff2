"""A processor's --requirements are index requirements only: refused otherwise at add/update and by the agent before pip."""
from __future__ import annotations

import pytest
from clihelp import GIT, error, ok
from network import make_repo, wait_for

from pyfi.core.requirements import check_requirements, split_requirements
from pyfi.db import models as m
from pyfi.db.engine import session_scope
from pyfi.errors import InvalidInput

ACCEPTED = {
    "redis>=4.5,<6": ["redis>=4.5,<6"],
    "celery[redis,msgpack]==5.3.*, kombu": ["celery[redis,msgpack]==5.3.*", "kombu"],
    'tomli; python_version < "3.11", zope.interface ~= 6.0': ['tomli; python_version < "3.11"', "zope.interface ~= 6.0"],
    " , ": [],
}
REFUSED = {
    "evildep @ file:///srv/outside/evildep": "names a URL or a path",
    "evildep@https://example.com/evildep.whl": "names a URL or a path",
    "pkg @ git+ssh:example.com": "names a URL (name @ URL)",
    "git+https://example.com/x.git": "names a URL or a path",
    "./sub": "names a URL or a path",
    "/abs/path": "names a URL or a path",
    "file:sub": "names a URL or a path",
    "-r requirements.txt": "is a pip option",
    "--index-url=http://evil": "is a pip option",
    "evil.whl": "looks like an archive's file name",
    "pkg.tar.gz": "looks like an archive's file name",
    "pkg\nother": "control or line-separator character",
    "pkg --hash=sha256:00": "is not a requirement",
}


@pytest.mark.parametrize("text", ACCEPTED)
def test_index_requirements_are_accepted_and_split_where_a_new_one_starts(text):
    assert check_requirements(text) == ACCEPTED[text] == split_requirements(text)


@pytest.mark.parametrize("text", REFUSED)
def test_anything_but_an_index_requirement_is_refused_naming_the_problem_and_the_fix(text):
    with pytest.raises(InvalidInput) as info:
        check_requirements(f"kombu, {text}")
    assert REFUSED[text] in info.value.message and "package names from the index" in info.value.hint


def test_add_and_update_processor_refuse_them_in_one_line(db_url, run_cli):
    line = error(run_cli, 2, "add", "processor", "-n", "p1", "-m", "sample", "-g", GIT,
                 "--requirements", "kombu, evildep @ file:///srv/outside/evildep")
    assert "requirement 'evildep @ file:///srv/outside/evildep' names a URL or a path" in line
    assert "give package names from the index" in line
    ok(run_cli, "add", "processor", "-n", "p1", "-m", "sample", "-g", GIT, "--requirements", "redis>=4.5,<6")
    assert "is a pip option" in error(run_cli, 2, "update", "processor", "-n", "p1", "--requirements", "-e .")
    ok(run_cli, "update", "processor", "-n", "p1", "--requirements", "kombu")


OUTSIDE_BACKEND = '''
import os

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    open({marker!r}, "a").write("code from outside the allow-list ran as uid %d\\n" % os.getuid())
    raise SystemExit("built")
'''


@pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
def test_the_agent_refuses_a_url_requirement_before_pip_runs(net, db_url, tmp_path):
    marker = tmp_path / "outside-code-ran"
    outside = tmp_path / "outside" / "evildep"
    outside.mkdir(parents=True)
    (outside / "pyproject.toml").write_text('[build-system]\nrequires = []\nbuild-backend = "backend"\n'
                                            'backend-path = ["."]\n[project]\nname = "evildep"\nversion = "1"\n')
    (outside / "backend.py").write_text(OUTSIDE_BACKEND.format(marker=str(marker)))
    net.env["PYFI_GIT_ALLOW"] = f"{tmp_path}/repos/*"
    repo = make_repo(tmp_path / "repos" / "p", {"sample.py": "def echo(x):\n    return x\n"})
    net.cli("add", "queue", "-n", net.name("q"))
    net.cli("add", "processor", "-n", "p", "-m", "sample", "-g", str(repo))
    net.cli("add", "socket", "-n", net.name("echo"), "-q", net.name("q"), "-pn", "p", "-t", "echo")
    net.start_agent("n1")
    net.wait_status("p", "running", timeout=90)
    with session_scope(db_url) as session:  # the database's owner, past every check of core's
        session.query(m.Processor).filter_by(name="p").one().requirements = f"evildep @ file://{outside}"
    error = wait_for(lambda: net.processor("p")["error"], 60, "the agent to refuse the requirement", interval=0.2)
    assert not marker.exists()  # pip never ran the outside project's build (as root, since this agent has no -u)
    assert f"requirement 'evildep @ file://{outside}' names a URL or a path" in error
