"""Turn a processor row into runnable code: git checkout + cached virtual environment.

Deploying is slow (git, pip), so results are cached per processor and only
redone when the row's repo/branch/commit/requirements change, or when a
followed branch moved (checked every ``HEAD_CHECK`` seconds). Failures are
remembered with a backoff so a broken processor does not stall the agent.
A repository outside the ``[git] allow`` list is refused before any git
command runs (the agent records the error as the processor's status).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from pyfi.agent import checkout, venv
from pyfi.core.trust import check_repo
from pyfi.errors import DeployError, PermissionDenied

HEAD_CHECK = 10.0
RETRY_AFTER = (2.0, 5.0, 15.0, 30.0)


@dataclass
class Deployed:
    key: tuple
    sha: str
    path: Path
    python: Path
    checked: float


@dataclass
class Failure:
    key: tuple
    error: DeployError
    attempts: int
    at: float

    def due(self) -> bool:
        return time.time() - self.at >= RETRY_AFTER[min(self.attempts, len(RETRY_AFTER)) - 1]


def source_key(processor: Any) -> tuple:
    reqs = tuple(r.strip() for r in (processor.requirements or "").split(",") if r.strip())
    return (processor.gitrepo, processor.branch or None, processor.commit or None, reqs)


class Deployer:
    def __init__(self, root: Path, git_allow: Sequence[str] = ()) -> None:
        self.repos, self.venvs = root / "repos", root / "venvs"
        self.git_allow = tuple(git_allow)
        self.deployed: dict[str, Deployed] = {}
        self.failures: dict[str, Failure] = {}

    def deploy(self, processor: Any) -> Deployed:
        """The processor's current code, deploying only when needed; never from a disallowed repo."""
        try:
            check_repo(processor.gitrepo, self.git_allow)
        except PermissionDenied as exc:
            self.forget(processor.id)
            raise DeployError(exc.message, hint=exc.hint) from None
        key = source_key(processor)
        current = self.deployed.get(processor.id)
        if current and current.key == key and not self._branch_moved(current):
            return current
        failure = self.failures.get(processor.id)
        if failure and failure.key == key and not failure.due():
            raise failure.error
        try:
            result = self._deploy(processor, key)
        except DeployError as exc:
            attempts = failure.attempts + 1 if failure and failure.key == key else 1
            self.failures[processor.id] = Failure(key, exc, attempts, time.time())
            raise
        self.failures.pop(processor.id, None)
        self.deployed[processor.id] = result
        return result

    def _deploy(self, processor: Any, key: tuple) -> Deployed:
        url, branch, commit, reqs = key
        sha = checkout.checkout(self.repos, processor.name, url, branch=branch, commit=commit)
        path = checkout.checkout_path(self.repos, processor.name, sha)
        python = venv.ensure_venv(path, sha, reqs, venv_root=self.venvs)
        return Deployed(key, sha, path, python, time.time())

    def _branch_moved(self, current: Deployed) -> bool:
        url, branch, commit, _ = current.key
        if commit or time.time() - current.checked < HEAD_CHECK:
            return False
        current.checked = time.time()
        try:
            return checkout.resolve_remote_commit(url, branch) != current.sha
        except DeployError:
            return False  # keep serving the code we have; the next check may succeed

    def forget(self, processor_id: str) -> None:
        self.deployed.pop(processor_id, None)
        self.failures.pop(processor_id, None)
