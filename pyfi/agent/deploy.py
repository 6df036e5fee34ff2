"""Turn a processor row into runnable code: git checkout + cached virtual environment.

Deploying is slow (git, pip), so results are cached per processor and only
redone when the row's repo/branch/commit/requirements change, or when a
followed branch moved (checked every ``HEAD_CHECK`` seconds). Failures are
remembered with a backoff so a broken processor does not stall the agent.
A repository outside the ``[git] allow`` list is refused before any git
command runs (the agent records the error as the processor's status).

The agent asks through :meth:`Deployer.ready`, which never waits: git and
pip run in a background thread per processor, so a slow clone or a long
``pip install`` of one processor does not hold up the 2 s reaction of the
others, and a processor whose new code is being deployed keeps its old
worker until the new code is ready. ``deploy`` is the same work, waited for.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from pyfi.agent import checkout, venv
from pyfi.core.trust import check_repo
from pyfi.errors import DeployError, PermissionDenied

log = logging.getLogger("pyfi.agent")

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


@dataclass(frozen=True)
class Source:
    """What deploying a processor needs, copied off its database row (which stays in its thread)."""

    id: str
    name: str
    key: tuple

    @classmethod
    def of(cls, processor: Any) -> Source:
        return cls(processor.id, processor.name, source_key(processor))


class Deployer:
    def __init__(self, root: Path, git_allow: Sequence[str] = (), on_ready: Callable[[], None] | None = None) -> None:
        """``on_ready`` is called (from a background thread) when a background deploy has succeeded or failed."""
        self.repos, self.venvs = root / "repos", root / "venvs"
        self.git_allow = tuple(git_allow)
        self.on_ready = on_ready
        self.deployed: dict[str, Deployed] = {}
        self.failures: dict[str, Failure] = {}
        self.jobs: dict[str, Source] = {}  # processor id -> its deploy in progress (one at a time)

    def deploy(self, processor: Any) -> Deployed:
        """The processor's current code, deploying only when needed; never from a disallowed repo."""
        self._check_allowed(processor)
        source = Source.of(processor)
        current = self.deployed.get(source.id)
        if current and current.key == source.key and not self._branch_moved(current):
            return current
        return self._deploy_remembered(source)

    def ready(self, processor: Any) -> Deployed | None:
        """The processor's current code, or None while it is deployed in the background. Never waits.

        Raises :class:`DeployError` for a disallowed repo, and, until a retry is
        due, the error of the last attempt at the processor's current source.
        """
        self._check_allowed(processor)
        source = Source.of(processor)
        current = self.deployed.get(source.id)
        if source.id in self.jobs:
            return current if current and current.key == source.key else None
        if current and current.key == source.key:
            if self._head_check_due(current):
                self._start_job(source)  # meanwhile the code we have keeps serving
            return current
        failure = self.failures.get(source.id)
        if failure and failure.key == source.key and not failure.due():
            raise failure.error
        self._start_job(source)
        return None

    def busy(self) -> bool:
        return bool(self.jobs)

    def deploying(self) -> list[str]:
        """The names of the processors being deployed (or checked) in the background."""
        return sorted(source.name for source in list(self.jobs.values()))

    def forget(self, processor_id: str) -> None:
        self.deployed.pop(processor_id, None)
        self.failures.pop(processor_id, None)

    def _check_allowed(self, processor: Any) -> None:
        try:
            check_repo(processor.gitrepo, self.git_allow)
        except PermissionDenied as exc:
            self.forget(processor.id)
            raise DeployError(exc.message, hint=exc.hint) from None

    def _start_job(self, source: Source) -> None:
        self.jobs[source.id] = source  # one job per processor at a time: it owns that processor's work dirs
        threading.Thread(target=self._run_job, args=(source,), name=f"pyfi-deploy-{source.name}", daemon=True).start()

    def _run_job(self, source: Source) -> None:
        news = True  # a deploy or a failure: the agent has something to act on
        try:
            current = self.deployed.get(source.id)
            if current and current.key == source.key and not self._branch_moved(current):
                news = False  # a head check that found the branch where it was
            else:
                self._deploy_remembered(source)
        except DeployError:
            pass  # remembered in self.failures: the agent shows it as the processor's status
        except Exception:  # noqa: BLE001 - a bug here must not end the thread silently
            log.exception("deploying %s failed", source.name)
        finally:
            self.jobs.pop(source.id, None)
        if news and self.on_ready is not None:
            self.on_ready()

    def _deploy_remembered(self, source: Source) -> Deployed:
        failure = self.failures.get(source.id)
        if failure and failure.key == source.key and not failure.due():
            raise failure.error
        try:
            result = self._deploy(source)
        except DeployError as exc:
            attempts = failure.attempts + 1 if failure and failure.key == source.key else 1
            self.failures[source.id] = Failure(source.key, exc, attempts, time.time())
            raise
        self.failures.pop(source.id, None)
        self.deployed[source.id] = result
        return result

    def _deploy(self, source: Source) -> Deployed:
        url, branch, commit, reqs = source.key
        sha = checkout.checkout(self.repos, source.name, url, branch=branch, commit=commit)
        path = checkout.checkout_path(self.repos, source.name, sha)
        python = venv.ensure_venv(path, sha, reqs, venv_root=self.venvs)
        return Deployed(source.key, sha, path, python, time.time())

    @staticmethod
    def _head_check_due(current: Deployed) -> bool:
        """A followed branch (no fixed commit) is asked for its head every ``HEAD_CHECK`` seconds."""
        return not current.key[2] and time.time() - current.checked >= HEAD_CHECK

    def _branch_moved(self, current: Deployed) -> bool:
        if not self._head_check_due(current):
            return False
        current.checked = time.time()
        url, branch, _, _ = current.key
        try:
            return checkout.resolve_remote_commit(url, branch) != current.sha
        except DeployError:
            return False  # keep serving the code we have; the next check may succeed
