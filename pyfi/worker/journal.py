"""Records a process could not write before it had to go: kept on disk, written by the next one.

While the database is down, a worker's records wait in memory. If the worker
must stop before the database is back (the agent gives it a grace period,
then kills it), the recorder saves what is left here, one JSON line per
record, under ``$PYFI_HOME/journal/<database>/``. The next recorder started
for that database on this machine claims the files (a rename, so only one
does), writes the records and then deletes them. Writing a record twice is
harmless: a call's row merges, and an event's id is fixed by its call, name
and attempt.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from pyfi.config import default_home
from pyfi.db.engine import redact_password
from pyfi.private import private_dir, write_private
from pyfi.worker.processes import pid_alive

log = logging.getLogger(__name__)

SUFFIX = ".jsonl"
CLAIMED = ".claimed-"  # + the claiming pid
TIME_FIELDS = ("started", "finished")  # the call columns a record may set to its time


def journal_dir(db_url: str) -> Path:
    """Where this machine keeps the unwritten records of one database login (a hash of its URL without password).

    A processor's workers log in with a new password at each start
    (:mod:`pyfi.core.worker_logins`): the next one still finds the journal.
    """
    return default_home(os.environ) / "journal" / hashlib.sha256(redact_password(db_url).encode()).hexdigest()[:16]


def save(db_url: str, records: Iterable[Any]) -> Path | None:
    """Write ``records`` (the recorder's) to a new journal file; its path, or None when there were none."""
    lines = [orjson.dumps([r.call_id, str(r.state), str(r.event), r.when, r.attempt, r.note, r.fields, r.worker])
             for r in records]
    if not lines:
        return None
    directory = journal_dir(db_url)
    private_dir(directory)
    path = directory / f"{time.time_ns()}-{os.getpid()}{SUFFIX}"
    staging = path.with_suffix(".tmp")
    write_private(staging, b"\n".join(lines) + b"\n")
    os.replace(staging, path)  # a reader never sees half a file
    return path


def claim(db_url: str) -> list[tuple[Path, list[list[Any]]]]:
    """Take the journal files of ``db_url`` not held by a live process: (claimed path, records as lists)."""
    directory = journal_dir(db_url)
    if not directory.is_dir():
        return []
    claimed = []
    for path in sorted(directory.iterdir()):
        if not _unheld(path):
            continue
        mine = directory / f"{path.name.split(CLAIMED)[0]}{CLAIMED}{os.getpid()}"
        try:
            os.rename(path, mine)  # atomic: of two claimants, one wins
            claimed.append((mine, [_decoded(line) for line in mine.read_bytes().splitlines() if line]))
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as exc:
            log.error("cannot read the journal file %s (%s); it is left in place", mine, exc)
    return claimed


def _unheld(path: Path) -> bool:
    """A saved file, or one claimed by a process that has died before writing it (not this one: it is on it)."""
    if path.name.endswith(SUFFIX):
        return True
    owner = path.name.rpartition(CLAIMED)[2]
    if CLAIMED not in path.name or not owner.isdigit() or int(owner) == os.getpid():
        return False
    return not pid_alive(int(owner))


def _decoded(line: bytes) -> list[Any]:
    call_id, state, event, when, attempt, note, fields, *worker = orjson.loads(line)  # (worker: absent in older lines)
    for name in TIME_FIELDS:
        if isinstance(fields.get(name), str):
            fields[name] = dt.datetime.fromisoformat(fields[name])
    return [call_id, state, event, dt.datetime.fromisoformat(when), attempt, note, fields, worker[0] if worker else None]
