"""Files of a worker's run directory as the agent reads and writes them: never through a link, never blocking.

With ``agent start -u USER`` a run directory is USER's (its worker writes
its state there) while the agent that reads its reports and writes its
control file runs as root. USER's code may put a link, a pipe or a second
name of another file in place of any of those files, so the agent:

- reads a report only when it is a regular file with no other name, opened
  without following a link and without waiting on a pipe (:func:`read_text`);
- replaces a file by writing a new one under a random name (created with
  ``O_EXCL | O_NOFOLLOW``) and renaming it over the old name (:func:`replace`);
- opens the worker's log for appending only when it is such a file too
  (:func:`open_log`);
- wakes the worker through its FIFO only when it is a FIFO, opened without
  following a link and without waiting for a reader (:func:`poke`).
"""
from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

LIMIT = 1 << 16  # a report is a line or a few: more is never read
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_POKE = os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_LOG = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


def read_text(path: Path, limit: int = LIMIT, tail: bool = False) -> str | None:
    """The file's text (its first, or with *tail* its last, *limit* bytes); None when there is no such file."""
    try:
        fd = os.open(path, _READ)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not _own_file(os.fstat(fd)):
            return None
        if tail:
            handle.seek(max(handle.seek(0, os.SEEK_END) - limit, 0))
        return handle.read(limit).decode(errors="replace")


def replace(path: Path, data: bytes) -> None:
    """Replace *path* by a new file holding *data*, owned by its directory's owner, mode 0600."""
    directory = path.parent.stat()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # O_EXCL | O_NOFOLLOW, mode 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            if directory.st_uid != os.geteuid():
                os.fchown(handle.fileno(), directory.st_uid, directory.st_gid)
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def poke(path: Path) -> None:
    """Write a byte to the FIFO at *path* if a process reads it (a hint: nothing happens otherwise)."""
    try:
        fd = os.open(path, _POKE)
    except OSError:  # none there, no reader (ENXIO), or a link
        return
    try:
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            os.write(fd, b"!")
    except OSError:  # full: its reader has a wake-up waiting already
        pass
    finally:
        os.close(fd)


def open_log(path: Path) -> int:
    """A descriptor appending to the worker's log at *path* (made 0600 when missing)."""
    fd = os.open(path, _LOG, 0o600)
    if not _own_file(os.fstat(fd)):
        os.close(fd)
        raise OSError(errno.EEXIST, f"{path} is not a file of the run directory's own")
    os.set_blocking(fd, True)
    return fd


def _own_file(info: os.stat_result) -> bool:
    """A regular file with one name: not a pipe, a device, or a second name of a file elsewhere."""
    return stat.S_ISREG(info.st_mode) and info.st_nlink == 1
