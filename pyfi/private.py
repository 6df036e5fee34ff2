"""Files under ``$PYFI_HOME`` are private to the OS user who runs pyfi, from their first byte.

They hold password hashes and call results (the embedded default's SQLite
files), credentials (``pyfi.ini``), workers' logs and unwritten records. So:

- every process pyfi runs (the CLI, an agent, a worker) sets its umask to
  077 before it creates anything (:func:`private_umask`);
- directories pyfi makes are 0700 (:func:`private_dir`), and a file is
  created 0600 before anything else opens it (:func:`private_file`), so a
  program using :mod:`pyfi.client` with a looser umask creates nothing
  others can read either; trees that tools write with modes of their own
  (a checkout, a virtual environment) are made private once written
  (:func:`private_tree`);
- ``db init``, ``pyfi -c`` and ``agent start`` take group and other
  permissions off an existing ``$PYFI_HOME`` (:func:`secure_home`);
- agents and workers are not dumpable (:func:`undumpable`): the credentials
  they hold in memory stay theirs.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_UMASK = 0o077


def private_umask() -> None:
    """Files and directories this process creates from now on are readable by its user only."""
    os.umask(PRIVATE_UMASK)


def private_dir(path: Path | str) -> Path:
    """``path`` (and any missing parent) created with mode 0700."""
    path = Path(path)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def private_file(path: Path | str) -> Path:
    """``path`` created empty with mode 0600 unless it exists (its directory created 0700)."""
    path = Path(path)
    private_dir(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    return path


def private_tree(root: Path | str) -> None:
    """Take group and other permissions off ``root`` and everything under it (links are left alone).

    For trees made by tools that set modes of their own: a repository's
    files unpacked with the modes git keeps, a virtual environment's scripts.
    """
    for path in [Path(root), *Path(root).rglob("*")]:
        info = path.lstat()
        if not stat.S_ISLNK(info.st_mode) and stat.S_IMODE(info.st_mode) & 0o077:
            os.chmod(path, stat.S_IMODE(info.st_mode) & ~0o077)


def write_private(path: Path | str, data: bytes) -> None:
    """Replace ``path`` by a file holding ``data``, readable by this user only (mode 0600 from its first byte)."""
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an existing file keeps its old mode through O_TRUNC
        os.write(fd, data)
    finally:
        os.close(fd)


def secure_home(home: Path | str) -> None:
    """``$PYFI_HOME`` created 0700, or an existing one of this user's taken down to 0700."""
    home = Path(home)
    if not home.exists():
        private_dir(home)
        return
    info = home.stat()
    if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) & 0o077:
        os.chmod(home, 0o700)


def undumpable() -> None:
    """Other processes of this OS user can neither read this process's memory and environment nor trace it.

    Linux's PR_SET_DUMPABLE 0 (the children it forks keep it): for agents and
    workers, which hold credentials that processor code in another process
    of the same user must not read. A no-op elsewhere.
    """
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4
    except (OSError, AttributeError):
        pass
