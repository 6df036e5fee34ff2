"""What a build apart installed, copied by root into the environment's root-owned home and checked against pip's records.

A build apart (:mod:`pyfi.agent.sandbox`) installs into a copy of the
environment that the workers' user owns. Once every process of the build
has ended, root copies into the real environment exactly the files that
the ``RECORD`` of an installed distribution lists, each read through
descriptors opened without following a link (:mod:`pyfi.agent.fdtree`),
owned by the build's user and with no other link to it, and written as a
new file whose content must match the hash the record gives (pip's
compiled ``.pyc`` files and the records themselves carry none). Anything
else the build left (caches, files no record lists) stays behind and is
removed with the scratch directory. A file whose content does not match
fails the deploy.
"""
from __future__ import annotations

import base64
import csv
import errno
import hashlib
import io
import os
import posixpath
import stat
from pathlib import Path

from pyfi.agent.fdtree import DIR_FLAGS, open_below, open_dir
from pyfi.errors import DeployError

CHUNK = 1 << 20
HINT = "deploy again; if it fails again, check what the repository's build writes into the environment"


def harvest(source: Path, dest: Path, site: Path, uid: int) -> int:
    """Copy the files the records under ``source/site`` list into *dest*; return how many."""
    top = open_dir(source)
    try:
        try:
            wanted = _recorded(top, site, uid)
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise DeployError(f"cannot read the records of what pip installed: {exc}", HINT) from None
        for rel, hashes in sorted(wanted.items()):
            _copy(top, dest, rel, hashes, uid)
    finally:
        os.close(top)
    return len(wanted)


def _recorded(top: int, site: Path, uid: int) -> dict[str, set[str]]:
    """Each file the records list (relative to the environment) and the hashes its records give it."""
    wanted: dict[str, set[str]] = {}
    site_fd = open_below(top, site.parts)
    try:
        for name in sorted(os.listdir(site_fd)):
            if not name.endswith(".dist-info"):
                continue
            record = f"{name}/RECORD"
            data = _read(site_fd, record, uid)
            for row in csv.reader(io.StringIO(data.decode("utf-8"))):
                if row:
                    wanted.setdefault(_inside(site, row[0]), set()).add(row[1] if len(row) > 1 else "")
            wanted.setdefault(_inside(site, record), set()).add("")
    finally:
        os.close(site_fd)
    return wanted


def _inside(site: Path, recorded: str) -> str:
    """A recorded path (relative to site-packages) as a path inside the environment, or DeployError."""
    rel = posixpath.normpath(posixpath.join(site.as_posix(), recorded))
    if recorded.startswith("/") or rel == ".." or rel.startswith("../") or "\\" in recorded:
        raise DeployError(f"an installed distribution records a file outside its environment: {recorded!r}", HINT)
    return rel


def _read(dir_fd: int, rel: str, uid: int) -> bytes:
    fd = _open_source(dir_fd, rel, uid)
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def _open_source(top: int, rel: str, uid: int) -> int:
    try:
        fd = open_below(top, rel.split("/"), directory=False)
    except OSError as exc:
        raise DeployError(f"the build's environment lacks {rel}: {exc.strerror}", HINT) from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_uid != uid or info.st_nlink != 1:
        os.close(fd)
        raise DeployError(f"{rel} in the build's environment is not a file of its own", HINT)
    return fd


def _copy(top: int, dest: Path, rel: str, hashes: set[str], uid: int) -> None:
    try:
        digests = _copied(top, dest, rel, hashes, uid)
    except OSError as exc:
        raise DeployError(f"cannot copy {rel} out of the build's environment: {exc.strerror or exc}", HINT) from None
    if not _matches(rel, hashes, digests):
        raise DeployError(f"{rel} does not match the hash its distribution's RECORD gives", HINT)


def _copied(top: int, dest: Path, rel: str, hashes: set[str], uid: int) -> dict[str, str]:
    """Copy one recorded file; its digests by algorithm."""
    source = _open_source(top, rel, uid)
    try:
        executable = os.fstat(source).st_mode & 0o100
        parent = _dest_dir(dest, rel.split("/")[:-1])
        try:
            algorithms = {h.partition("=")[0] for h in hashes if h} & hashlib.algorithms_guaranteed
            digests = _write(source, parent, rel.rsplit("/", 1)[-1], 0o700 if executable else 0o600, algorithms)
        finally:
            os.close(parent)
    finally:
        os.close(source)
    return digests


def _dest_dir(dest: Path, parts: list[str]) -> int:
    """A descriptor of ``dest/parts``, made (0700) where missing; no component may be a link."""
    fd = open_dir(dest)
    for part in parts:
        try:
            os.mkdir(part, 0o700, dir_fd=fd)
        except FileExistsError:
            pass
        try:
            child = os.open(part, DIR_FLAGS, dir_fd=fd)
        finally:
            os.close(fd)
        fd = child
    return fd


def _write(source: int, parent: int, name: str, mode: int, algorithms: set[str]) -> dict[str, str]:
    """Copy *source* into a new file *name* (replacing a file or link of that name); its digests by algorithm."""
    try:
        os.unlink(name, dir_fd=parent)
    except FileNotFoundError:
        pass
    except IsADirectoryError:
        raise OSError(errno.EISDIR, f"{name} is a directory") from None
    digests = {algorithm: hashlib.new(algorithm) for algorithm in algorithms}
    target = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=parent)
    with os.fdopen(target, "wb") as out:
        while chunk := os.read(source, CHUNK):
            out.write(chunk)
            for digest in digests.values():
                digest.update(chunk)
    return {algorithm: base64.urlsafe_b64encode(d.digest()).rstrip(b"=").decode() for algorithm, d in digests.items()}


def _matches(rel: str, hashes: set[str], digests: dict[str, str]) -> bool:
    """The copy matches one hash a record gives it; only records and pip's bytecode may come without one."""
    for recorded in hashes:
        algorithm, _, value = recorded.partition("=")
        if not recorded:
            if rel.endswith("/RECORD") or (rel.endswith(".pyc") and "/__pycache__/" in f"/{rel}"):
                return True
        elif digests.get(algorithm) == value:
            return True
    return False
