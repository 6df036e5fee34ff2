"""A Python with pyfi that another OS user (``nobody``) can run, for ``agent start -u`` tests.

Its fixture ``shared_python`` (made once a test session; conftest.py loads
this module as a plugin) is the interpreter, or a skip saying why there is
none here.

The tests' own interpreter may live where only root can read (pyenv under
/root). This makes a virtual environment in /tmp from the system's Python of
the same version, with this interpreter's site-packages on its path when
``nobody`` can read them, or a copy of them (and of pyfi) when it cannot.
"""
from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import pyfi

OTHER_USER = "nobody"


def as_other_user(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", OTHER_USER, "--", *argv], capture_output=True, text=True, timeout=120,
                          cwd="/")


def make_shared_python() -> tuple[Path, Path]:
    """(the interpreter, its root directory, to remove afterwards); RuntimeError saying why it cannot be made."""
    if os.geteuid() != 0 or not shutil.which("runuser"):
        raise RuntimeError("switching users needs root and runuser")
    base = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
    if not base.exists():
        raise RuntimeError(f"no system {base.name} to make an environment every user can run")
    root = Path(tempfile.mkdtemp(prefix="pyfi-shared-python-"))
    subprocess.run([str(base), "-m", "venv", "--without-pip", str(root / "venv")], check=True, capture_output=True)
    target = next((root / "venv" / "lib").glob("python*/site-packages"))
    ours = [Path(p) for p in site.getsitepackages()]
    needed = [*ours, Path(pyfi.__file__).parent]  # (an editable install of pyfi lives in its checkout)
    if all(as_other_user("test", "-r", str(path)).returncode == 0 for path in needed):
        lines = [f"import site; site.addsitedir({str(p)!r})" for p in ours]
    else:
        lines = _copied(root, ours)
    lines.append(_backports(root, base))
    (target / "pyfi-tests.pth").write_text("\n".join(lines) + "\n")
    subprocess.run(["chmod", "-R", "a+rX", str(root)], check=True)
    python = root / "venv" / "bin" / "python"
    check = as_other_user(str(python), "-c", "import pyfi.worker.main, celery, psycopg2, redis")
    if check.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"{OTHER_USER} cannot use the environment: {check.stderr.strip()[-300:]}")
    return python, root


def _backports(root: Path, base: Path) -> str:
    """What our packages need on the system's (older) patch release: redis-py wants async_timeout before 3.11.3."""
    extra = root / "extra"
    extra.mkdir()
    done = subprocess.run([str(base), "-c", "import sys; sys.exit(sys.version_info >= (3, 11, 3))"])
    if done.returncode == 0:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--target", str(extra), "async-timeout>=4.0.3"],
                       check=True, capture_output=True, timeout=300)
    return str(extra)


def _copied(root: Path, ours: list[Path]) -> list[str]:
    """Copies of our site-packages and of pyfi itself (an editable install points into a checkout)."""
    lines = []
    for number, path in enumerate(ours):
        copy = root / f"site{number}"
        shutil.copytree(path, copy, symlinks=True, ignore=shutil.ignore_patterns("__editable__*", "*.pth"))
        lines.append(f"import site; site.addsitedir({str(copy)!r})")
    source = root / "src"
    shutil.copytree(Path(pyfi.__file__).parent, source / "pyfi", symlinks=True)
    migrations = Path(pyfi.__file__).parent.parent / "migrations"
    if migrations.is_dir():
        shutil.copytree(migrations, source / "pyfi" / "migrations", symlinks=True, dirs_exist_ok=True)
    return [str(source), *lines]


@pytest.fixture(scope="session")
def shared_python():
    from conftest import require_service

    try:
        python, root = make_shared_python()
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        require_service("a Python every user can run (root, runuser, the system's python3)", str(exc))
    yield python
    shutil.rmtree(root, ignore_errors=True)
