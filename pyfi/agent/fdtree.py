"""Walking, handing over and sharing trees by file descriptor, never following a symbolic link.

The agent runs as root and changes the owner and mode of trees that another
user's code may be changing at the same moment (``agent start -u``). A
path names whatever its components are when the kernel resolves it, so a
directory swapped for a link between a listing and a ``chown`` would make
root change something else. Here every directory is opened relative to its
parent's descriptor with ``O_NOFOLLOW | O_DIRECTORY`` (checked to be the one
just listed), every regular file with ``O_NOFOLLOW``, and owners and modes
change through those descriptors (``fchown``/``fchmod``). Links, devices,
pipes and sockets are never opened; a tree deeper than ``MAX_DEPTH`` is
refused rather than walked with one descriptor per level.
"""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Callable

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
MAX_DEPTH = 256

#: called with a descriptor of a directory or regular file and its fstat
Visit = Callable[[int, os.stat_result], None]


def open_dir(path: Path | str) -> int:
    """A descriptor of the directory *path* (its last component must not be a link)."""
    return os.open(path, DIR_FLAGS)


def open_below(dir_fd: int, parts: tuple[str, ...] | list[str], *, directory: bool = True) -> int:
    """Open ``parts`` below *dir_fd* one component at a time, each without following a link."""
    fd = os.dup(dir_fd)
    try:
        for index, part in enumerate(parts):
            if part in ("", ".", "..") or "/" in part:
                raise OSError(errno.EINVAL, f"unsafe path component {part!r}")
            last = index == len(parts) - 1
            flags = DIR_FLAGS if directory or not last else FILE_FLAGS
            child = os.open(part, flags, dir_fd=fd)
            os.close(fd)
            fd = child
        return fd
    except BaseException:
        os.close(fd)
        raise


def visit_tree(root: Path | str, visit: Visit) -> None:
    """Call *visit* on *root* and on every directory and regular file below it (see the module docstring)."""
    fd = open_dir(root)
    try:
        _visit(fd, os.fstat(fd), visit, 0)
    finally:
        os.close(fd)


def _visit(dir_fd: int, info: os.stat_result, visit: Visit, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise OSError(errno.ELOOP, f"a tree deeper than {MAX_DEPTH} directories")
    visit(dir_fd, info)
    for name in os.listdir(dir_fd):
        child = _open_entry(dir_fd, name)
        if child is None:
            continue
        fd, child_info = child
        try:
            if stat.S_ISDIR(child_info.st_mode):
                _visit(fd, child_info, visit, depth + 1)
            else:
                visit(fd, child_info)
        finally:
            os.close(fd)


def _open_entry(dir_fd: int, name: str) -> tuple[int, os.stat_result] | None:
    """A descriptor of the directory or regular file *name* is now, or None (a link, a device, gone)."""
    try:
        listed = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    if not (stat.S_ISDIR(listed.st_mode) or stat.S_ISREG(listed.st_mode)):
        return None
    try:
        fd = os.open(name, DIR_FLAGS if stat.S_ISDIR(listed.st_mode) else FILE_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR, errno.ENXIO):
            return None  # swapped meanwhile: not what was listed
        raise
    opened = os.fstat(fd)
    if (opened.st_dev, opened.st_ino, stat.S_IFMT(opened.st_mode)) != (listed.st_dev, listed.st_ino,
                                                                        stat.S_IFMT(listed.st_mode)):
        os.close(fd)
        return None
    return fd, opened


def chown_tree(root: Path | str, uid: int, gid: int) -> None:
    """Give *root* and its tree to ``uid:gid``; a file with other links is left alone (it may be someone else's)."""
    def give(fd: int, info: os.stat_result) -> None:
        if stat.S_ISDIR(info.st_mode) or info.st_nlink == 1:
            os.fchown(fd, uid, gid)

    visit_tree(root, give)


def share_tree(root: Path | str, gid: int) -> None:
    """*root* and its tree root's, readable (never writable) by group *gid*: see :func:`share_mode`."""
    owner = os.geteuid()

    def share(fd: int, info: os.stat_result) -> None:
        os.fchown(fd, owner, gid)
        os.fchmod(fd, share_mode(info))

    visit_tree(root, share)


def share_path(top: Path | str, path: Path | str, gid: int) -> None:
    """*top* and the directories from it down to *path*, shared like :func:`share_tree` (not what they hold)."""
    parts = Path(path).relative_to(top).parts
    fd = open_dir(top)
    try:
        for part in (None, *parts):
            if part is not None:
                child = open_below(fd, [part])
                os.close(fd)
                fd = child
            os.fchown(fd, os.geteuid(), gid)
            os.fchmod(fd, share_mode(os.fstat(fd)))
    finally:
        os.close(fd)


def share_mode(info: os.stat_result) -> int:
    """The owner's bits kept, the group's read (and search or execute where the owner has it), others' none."""
    mode = stat.S_IMODE(info.st_mode) & 0o700
    group = 0o050 if stat.S_ISDIR(info.st_mode) or mode & 0o100 else 0o040
    return mode | group
