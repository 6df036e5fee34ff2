"""Errors as a shell user meets them: a real ``pyfi`` process, its stderr and exit code."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/x"


def pyfi(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> subprocess.CompletedProcess:
    beside = Path(sys.executable).parent / "pyfi"
    command = [str(beside)] if beside.exists() else [sys.executable, "-m", "pyfi.cli"]
    return subprocess.run(command + list(args), capture_output=True, text=True, input=input, timeout=60,
                          env={**os.environ, **(env or {})})


def one_error_line(proc: subprocess.CompletedProcess, exit_code: int) -> str:
    assert proc.returncode == exit_code, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), proc.stderr
    return lines[0]


def test_unreachable_database_is_one_line_exit_1(home):
    line = one_error_line(pyfi("-d", UNREACHABLE, "whoami"), 1)
    assert "database postgresql://postgres@127.0.0.1:1/x is unavailable" in line
    assert "check that the server is running" in line
    env_line = one_error_line(pyfi("ls", "queues", env={"PYFI_DB": UNREACHABLE}), 1)
    assert "is unavailable" in env_line


def test_debug_shows_the_traceback(home):
    proc = pyfi("--debug", "-d", UNREACHABLE, "whoami")
    assert proc.returncode == 1
    assert "Traceback (most recent call last)" in proc.stderr
    assert "BackendUnavailable" in proc.stderr


def test_missing_database_on_a_live_server_names_it(home, pg_server_url):
    url = pg_server_url.rsplit("/", 1)[0] + "/pyfi_no_such_db"
    line = one_error_line(pyfi("-d", url, "ls", "queues"), 1)
    assert 'database "pyfi_no_such_db" does not exist' in line


def test_password_in_the_uri_is_not_printed(home):
    line = one_error_line(pyfi("-d", "postgresql://bob:hunter2@127.0.0.1:1/x", "whoami"), 1)
    assert "hunter2" not in line and "bob:***@127.0.0.1" in line


@pytest.mark.parametrize("args,needle", [
    (("add", "queue"), "Missing option '-n' / '--name'"),
    (("nosuchcommand",), "No such command 'nosuchcommand'"),
    (("add", "queue", "-n", "q1", "-t", "bogus"), "Invalid value for '-t' / '--type'"),
    (("-d", "nonsense", "whoami"), "invalid db URI 'nonsense'"),
])
def test_usage_errors_exit_2(home, args, needle):
    proc = pyfi(*args, env={"PYFI_DB": UNREACHABLE})
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("Error: ") and needle in proc.stderr


def test_permission_denied_names_the_missing_right_and_adds_nothing(db_url, run_cli):
    assert run_cli("add", "user", "-n", "joe", "-e", "joe@xyz", "-p", "12345").exit_code == 0
    as_joe = {"PYFI_USER": "joe", "PYFI_DB": db_url}
    line = one_error_line(pyfi("add", "processor", "-n", "p1", "-m", "pkg.sample", "-g", "https://x/y.git",
                               env=as_joe), 1)
    assert "user 'joe' lacks the right ADD_PROCESSOR" in line
    assert "pyfi add privilege -u joe -n ADD_PROCESSOR" in line
    listing = json.loads(run_cli("ls", "processors", "--json").stdout)
    assert listing["total"] == 0
    stranger = one_error_line(pyfi("add", "queue", "-n", "q1", env={"PYFI_USER": "nobody", "PYFI_DB": db_url}), 1)
    assert "'nobody' is not a pyfi user" in stranger
    assert json.loads(run_cli("ls", "queues", "--json").stdout)["total"] == 0
