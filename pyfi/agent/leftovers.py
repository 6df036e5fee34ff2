"""Checkouts and virtual environments of processors that are gone from the database.

A processor's code lives in ``repos/<safe name>/`` under the agent's work
dir (:mod:`pyfi.agent.checkout`), its environments in ``venvs/``
(:mod:`pyfi.agent.venv`). Once a processor is deleted (or renamed) and no
worker, spare or deploy of this agent works in its directory any more, the
directory goes, with the environments built for its checkouts that no other
processor's deployed code uses. The agent looks when it starts, when one of
its workers has stopped, and every ``SWEEP_LOGINS`` seconds.
"""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from pyfi.agent.checkout import safe_name
from pyfi.agent.deploy import Deployer
from pyfi.agent.supervisor import Handle, Spare
from pyfi.agent.venv import STAMP, venv_of
from pyfi.db.models import Processor

log = logging.getLogger("pyfi.agent")


def leftover_dirs(repos: Path, kept_names: Iterable[str]) -> list[Path]:
    """Processor directories under ``repos`` named after none of ``kept_names``."""
    if not repos.is_dir():
        return []
    kept = {safe_name(name) for name in kept_names}
    return sorted(d for d in repos.iterdir() if d.is_dir() and not d.is_symlink() and d.name not in kept)


def venvs_built_in(venvs: Path, work_dir: Path) -> list[Path]:
    """Environments whose stamp names a checkout inside ``work_dir``."""
    if not venvs.is_dir():
        return []
    return [v for v in sorted(venvs.iterdir()) if v.is_dir() and _stamped_checkout(v).is_relative_to(work_dir)]


def _stamped_checkout(venv_dir: Path) -> Path:
    try:
        return Path(json.loads((venv_dir / STAMP).read_text("utf-8"))["checkout"])
    except (OSError, ValueError, KeyError, TypeError):
        return Path("/nonexistent")  # an environment being built, or not pyfi's: left alone


def remove_leftovers(repos: Path, venvs: Path, kept_names: Iterable[str], used_venvs: Iterable[Path]) -> list[str]:
    """Remove the directories of processors not in ``kept_names`` and their unused environments; their names."""
    used = {Path(v).resolve() for v in used_venvs}
    removed = []
    for work_dir in leftover_dirs(repos, kept_names):
        for venv_dir in venvs_built_in(venvs, work_dir.resolve()):
            if venv_dir.resolve() not in used:
                shutil.rmtree(venv_dir, ignore_errors=True)
        shutil.rmtree(work_dir, ignore_errors=True)
        log.info("removed %s: its processor is gone from the database", work_dir)
        removed.append(work_dir.name)
    return removed


class Tidying:
    """The agent's removal of leftovers; the attributes below are the agent's."""

    deployer: Deployer
    handles: dict[str, Handle]
    retiring: list[Handle]
    spares: dict[str, Spare]
    tidy_due: bool

    def tidy_if_due(self, session: Session) -> None:
        """Remove what processors gone from the database left, if a look is due."""
        if not self.tidy_due:
            return
        self.tidy_due = False
        kept = set(session.scalars(select(Processor.name))) | self.names_at_work()
        used = [venv_of(d.python) for d in list(self.deployer.deployed.values())]
        used += [venv_of(spare.key[1]) for spare in self.spares.values()]
        remove_leftovers(self.deployer.repos, self.deployer.venvs, kept, used)

    def names_at_work(self) -> set[str]:
        """Processors whose directory a worker, spare or deploy of this agent still uses."""
        workers = {h.processor for h in [*self.handles.values(), *self.retiring]}
        return workers | {s.processor for s in self.spares.values()} | set(self.deployer.deploying())
