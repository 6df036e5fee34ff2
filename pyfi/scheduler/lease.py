"""A lease: one holder at a time of a name, network-wide, taken over within seconds of the holder's death.

No consensus of pyfi's own: on PostgreSQL an advisory lock held on a
connection of the holder's, which the server releases the moment that
connection goes (the process died, the network broke); on SQLite (one
machine) an ``flock`` on a file next to the database, which the kernel
releases when the process dies. A holder asks :meth:`Lease.held` before each
act: a lease whose connection broke is lost, and it stops acting at once.
"""
from __future__ import annotations

import fcntl
import hashlib
import logging
import os
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from pyfi.db.engine import get_engine
from pyfi.private import private_file

log = logging.getLogger("pyfi.scheduler")


def lock_key(name: str) -> int:
    """A signed 64-bit advisory-lock key for ``name``, namespaced to pyfi's leases."""
    return int.from_bytes(hashlib.sha256(f"pyfi.lease:{name}".encode()).digest()[:8], "big", signed=True)


class Lease:
    def __init__(self, db_url: str, name: str) -> None:
        self.db_url, self.name = db_url, name
        self._conn: Any = None  # PostgreSQL: the connection that holds the lock
        self._fd: int | None = None  # SQLite: the locked file

    @property
    def sqlite(self) -> bool:
        return make_url(self.db_url).get_backend_name() == "sqlite"

    def acquire(self) -> bool:
        """True if this process holds the lease now (it may have held it already)."""
        if self.held():
            return True
        return self._lock_file() if self.sqlite else self._lock_postgres()

    def held(self) -> bool:
        """True while the lease is this process's: on PostgreSQL, its connection still answers."""
        if self._fd is not None:
            return True
        if self._conn is None:
            return False
        try:
            self._conn.execute(text("SELECT 1"))
            return True
        except SQLAlchemyError:
            log.warning("lease %s lost: its database connection broke", self.name)
            self._forget_connection()
            return False

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # (closing the file releases its lock)
            self._fd = None
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": lock_key(self.name)})
            except SQLAlchemyError:
                pass
            self._forget_connection()

    def _lock_postgres(self) -> bool:
        try:
            conn = get_engine(self.db_url).connect().execution_options(isolation_level="AUTOCOMMIT")
            if conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": lock_key(self.name)}).scalar():
                self._conn = conn
                return True
            conn.close()
        except SQLAlchemyError as exc:
            log.warning("cannot ask for lease %s: %s", self.name, str(exc).splitlines()[0])
        return False

    def _lock_file(self) -> bool:
        database = Path(make_url(self.db_url).database or ".")
        path = private_file(database.parent / f".{database.name}.{hashlib.sha256(self.name.encode()).hexdigest()[:12]}"
                                                 ".lease")
        fd = os.open(path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def _forget_connection(self) -> None:
        try:
            self._conn.close()
        except Exception:  # noqa: BLE001 - a broken connection may fail to close; it is dropped either way
            pass
        self._conn = None
