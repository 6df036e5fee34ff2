"""Running processor code as another OS user: ``agent start -u USER``.

The agent (root) keeps its credentials and ``$PYFI_HOME`` to itself; every
piece of processor code runs as USER: the workers, the deploy's import check
and the ``pip install`` that builds a processor's environment (a repository's
build runs its own code). USER gets a work tree it can use and nothing more:

- the work dir and the directories on the way to the code are root's, open
  to USER's group for reading (0750);
- checkouts and virtual environments are root's and never USER's, readable
  by USER's group and writable by no one else, so one processor's code
  cannot change another's: pip builds in a scratch copy, apart
  (:mod:`pyfi.agent.sandbox`), and root copies out what it installed
  (:mod:`pyfi.agent.harvest`);
- a worker's run directory and the workers' home (their journal) are USER's.

Owners and modes change through descriptors opened without following a
link (:mod:`pyfi.agent.fdtree`), never by a path USER could have swapped.

``$PYFI_HOME`` stays private (0700): the work dir must be elsewhere
(``--workdir``), somewhere USER can reach. What cannot work is refused when
the agent starts, with one line naming the fix: a USER that cannot reach the
work dir or run the agent's Python and pyfi, a node that refuses builds
apart (no CAP_SYS_ADMIN, no ``unshare``), and the embedded default, whose
database and broker are files in the agent's private home.
"""
from __future__ import annotations

import os
import pwd
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyfi.agent import fdtree, sandbox
from pyfi.config import Settings
from pyfi.errors import InvalidInput

_CAN_REACH = "import os, sys; sys.exit(0 if os.access(sys.argv[1], os.R_OK | os.X_OK) else 3)"


@dataclass(frozen=True)
class RunAs:
    user: str
    uid: int
    gid: int

    @classmethod
    def named(cls, user: str) -> RunAs:
        entry = pwd.getpwnam(user)
        return cls(user, entry.pw_uid, entry.pw_gid)

    def check(self, settings: Settings, workdir: Path) -> None:
        """Refuse, with the fix, what cannot work for USER (see the module docstring)."""
        if _embedded(settings):
            raise InvalidInput(f"agent start -u {self.user} cannot run workers on the embedded default: its database "
                               f"and broker are files in {settings.home}, private to this agent's user",
                               "use PostgreSQL and Redis (or RabbitMQ): pyfi -c, or PYFI_DB, PYFI_BROKER, PYFI_BACKEND "
                               "and PYFI_PUBSUB")
        if self.run([sys.executable, "-c", "import pyfi.worker.main"]) != 0:
            raise InvalidInput(f"user {self.user} cannot run this agent's Python with pyfi ({sys.executable})",
                               f"install pyfi where {self.user} can read it, e.g. in a virtual environment under "
                               f"/opt, and start the agent with that one")
        if self.run([sys.executable, "-c", _CAN_REACH, str(workdir)]) != 0:
            raise InvalidInput(f"user {self.user} cannot reach the agent's work dir {workdir} (a directory on its "
                               f"way is closed to it; $PYFI_HOME is private to the agent's user)",
                               f"pass --workdir with a directory {self.user} can reach, e.g. /var/lib/pyfi")
        problem = sandbox.check(self)
        if problem:
            raise InvalidInput(f"agent start -u {self.user} builds environments apart (new mount and PID namespaces, "
                               f"a group of their own), and this node refuses that: {problem}",
                               "run the agent as root with CAP_SYS_ADMIN (on the host or in a privileged container), "
                               "with util-linux's unshare installed")

    def process_kwargs(self) -> dict[str, Any]:
        """What ``subprocess`` needs to start a process as USER: its uid, its group and its other groups."""
        return {"user": self.uid, "group": self.gid, "extra_groups": os.getgrouplist(self.user, self.gid)}

    def run(self, argv: list[str]) -> int:
        """The exit code of ``argv`` run as USER (127 when it cannot even start)."""
        try:
            return subprocess.run(argv, capture_output=True, timeout=60, cwd="/",
                                  env={"PATH": os.environ.get("PATH", "")}, **self.process_kwargs()).returncode
        except (OSError, subprocess.TimeoutExpired):
            return 127

    def open_dirs(self, top: Path, path: Path) -> None:
        """``top`` and the directories from it down to ``path``: root's, readable by USER's group (mode 0750)."""
        fdtree.share_path(top, path, self.gid)

    def share(self, root: Path) -> None:
        """A tree root's, readable (not writable) by USER's group: code that USER runs and cannot change."""
        fdtree.share_tree(root, self.gid)

    def own(self, path: Path) -> None:
        """``path`` (and its tree) USER's: where its processes write."""
        fdtree.chown_tree(path, self.uid, self.gid)


def _embedded(settings: Settings) -> bool:
    """Any of the database, broker, result backend or pub/sub is a file of the agent's."""
    urls = (settings.db, settings.broker, settings.backend, settings.pubsub)
    return any(url.partition(":")[0].rpartition("+")[2] == "sqlite" for url in urls)
