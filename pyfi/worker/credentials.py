"""What a worker gets from its agent on a pipe, never in its environment: its database login and signing key.

The agent writes one JSON line to the worker's stdin (after ``go`` for a
spare) and closes it. Why not the environment: ``/proc/<pid>/environ`` of a
process stays readable by every process of its user for its whole life, and
the children a worker forks inherit it. The worker also makes itself not
dumpable (:func:`pyfi.private.undumpable`) before it reads the line, so no
other process of its user can read it from its memory either.

- ``db``: the database URL of the processor's workers' login (PostgreSQL:
  a role that can record only this processor's calls, see
  :mod:`pyfi.core.worker_logins`; SQLite: the database file);
- ``key_id``, ``private_key``: the processor's signing key
  (:mod:`pyfi.messaging.signing`), which the calls it sends carry.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import IO

from pyfi.errors import ConfigError


@dataclass(frozen=True)
class Credentials:
    db: str
    key_id: str
    private_key: str

    def line(self) -> str:
        """The line the agent writes (ending in a newline)."""
        return json.dumps({"db": self.db, "key_id": self.key_id, "private_key": self.private_key}) + "\n"

    def __repr__(self) -> str:
        return f"Credentials(key_id={self.key_id!r})"  # never the password nor the private key


def read_credentials(stream: IO[str]) -> Credentials:
    """The credentials line an agent wrote; ConfigError when there is none (started by hand with the flag)."""
    text = stream.readline()
    try:
        data = json.loads(text)
        return Credentials(str(data["db"]), str(data["key_id"]), str(data["private_key"]))
    except (ValueError, KeyError, TypeError):
        raise ConfigError("no credentials arrived on stdin (--credentials-on-stdin is for workers an agent starts)",
                          "start a worker by hand without --credentials-on-stdin, over the database owner's login"
                          ) from None
