"""Turn a processor row into runnable code: git checkout + cached virtual environment + an import check.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from pyfi.agent import checkout, children, importcheck, sandbox, venv
from pyfi.core.requirements import split_requirements
from pyfi.core.trust import check_repo
from pyfi.errors import DeployError, PermissionDenied

log = logging.getLogger("pyfi.agent")

HEAD_CHECK = 10.0
RETRY_AFTER = (2.0, 5.0, 15.0, 30.0)
DEPLOYS_STOP_GRACE = 3.0  # seconds the deploys still running get to give up when the agent stops
CANCEL_LIMIT = 60.0  # a cancelled job ends its steps early; its git and pip are ended meanwhile


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
        return time.monotonic() - self.at >= RETRY_AFTER[min(self.attempts, len(RETRY_AFTER)) - 1]


def source_key(processor: Any) -> tuple:
    """What a deploy depends on: (repo, branch, commit, requirements, module); the module is imported to check it."""
    reqs = tuple(split_requirements(processor.requirements))
    return (processor.gitrepo, processor.branch or None, processor.commit or None, reqs, processor.module)


@dataclass(frozen=True)
class Source:
    """What deploying a processor needs, copied off its database row (which stays in its thread)."""

    id: str
    name: str
    key: tuple

    @classmethod
    def of(cls, processor: Any) -> Source:
        return cls(processor.id, processor.name, source_key(processor))


@dataclass
class Job:
    """A deploy (or a followed branch's head check) running in a background thread."""

    source: Source
    done: threading.Event = field(default_factory=threading.Event)
    cancelled: bool = False  # the processor's settings changed: give up as soon as possible
    started: float = field(default_factory=time.monotonic)
    worked: threading.Event = field(default_factory=threading.Event)  # its deploy has returned or raised
    ender: threading.Thread | None = None  # ends its git and pip once it is cancelled, until it has worked
    lock: threading.Lock = field(default_factory=threading.Lock)  # an ender starts before the job has worked, or not


class Deployer:
    def __init__(self, root: Path, git_allow: Sequence[str] = (), on_news: Callable[[], None] | None = None,
                 as_worker: importcheck.AsWorker | None = None) -> None:
        """``on_news`` is called from a background thread when a deploy has succeeded or failed.

        ``as_worker``: the user and environment the agent's workers run with, for the import check.
        """
        self.as_worker = as_worker or importcheck.AsWorker()
        root = root.resolve()  # the cancel matches /proc's cwd, which is a resolved path
        self.repos, self.venvs = root / "repos", root / "venvs"
        self.git_allow = tuple(git_allow)
        self.on_news = on_news
        self.deployed: dict[str, Deployed] = {}
        self.failures: dict[str, Failure] = {}
        self.jobs: dict[str, Job] = {}  # processor id -> its job (one at a time: it owns the processor's work dirs)
        self.jobs_lock = threading.Lock()  # jobs end in their own threads while the agent's loop reads them
        self.stopping = False

    # -- what the agent asks --------------------------------------------------------------
    def ready(self, processor: Any, follow: bool = True) -> Deployed | None:
        """The processor's current code, or None while it is deployed in the background. Never waits.

        ``follow``: ask a followed branch for its head when that is due (the
        code keeps serving meanwhile). Raises :class:`DeployError` for a
        disallowed repo and, until a retry is due, for the last failed
        attempt at the processor's current settings.
        """
        self._check_allowed(processor)
        source = Source.of(processor)
        job = self.jobs.get(source.id)  # asked first: a job stores its outcome before it leaves self.jobs
        if job is not None:
            if job.source.key != source.key:
                self._cancel(job)  # for settings that are gone; the new ones are deployed once it has ended
            return self.current(processor)
        current = self.current(processor)
        if current is not None:
            if follow and self._head_check_due(current):
                self._start_job(source)
            return current
        failure = self.failures.get(source.id)
        if failure and failure.key == source.key and not failure.due():
            raise failure.error
        if self._job_named(source.name) is None:  # else one for a deleted namesake still ends in its work dir
            self._start_job(source)
        return None

    def deploy(self, processor: Any) -> Deployed:
        """:meth:`ready`, waited for."""
        while True:
            deployed = self.ready(processor)
            if deployed is not None:
                return deployed
            job = self.jobs.get(processor.id) or self._job_named(processor.name)
            if job is not None:
                job.done.wait()

    def current(self, processor: Any) -> Deployed | None:
        """The deployed code of the processor, if it is of its current settings."""
        deployed = self.deployed.get(processor.id)
        return deployed if deployed is not None and deployed.key == source_key(processor) else None

    def failure(self, processor: Any) -> DeployError | None:
        """Why the last attempt at the processor's current settings failed (None if it did not)."""
        failure = self.failures.get(processor.id)
        return failure.error if failure is not None and failure.key == source_key(processor) else None

    def busy(self) -> bool:
        return bool(self.jobs)

    def deploying(self) -> list[str]:
        """The names of the processors being deployed (or checked) in the background."""
        return sorted(job.source.name for job in self._running())

    def deploying_for(self, processor: Any) -> float | None:
        """Seconds the processor's deploy has run (None when none runs): git or pip may hang on a silent server."""
        job = self.jobs.get(processor.id)
        return time.monotonic() - job.started if job is not None else None

    def cancel_all_but(self, processor_ids: set[str]) -> None:
        """End the deploys of processors that are gone: a fetch that hangs would hold their work dir for minutes."""
        for job in self._running():
            if job.source.id not in processor_ids:
                self._cancel(job)

    def forget(self, processor_id: str) -> None:
        self.deployed.pop(processor_id, None)
        self.failures.pop(processor_id, None)

    def stop(self, grace: float = DEPLOYS_STOP_GRACE) -> None:
        """End the jobs still running and their git and pip processes (the agent is stopping).

        Left alone those would outlive the agent, with nothing left to enforce
        their timeouts, and race the next agent for the same work dirs. A job
        goes on to its next git step when one is ended, so they are ended
        until every job has given up, for at most *grace* seconds.
        """
        self.stopping = True
        for job in self._running():
            job.cancelled = True
        deadline = time.monotonic() + grace
        while self.jobs and time.monotonic() < deadline:
            children.end(children.deploy_children())
            time.sleep(0.05)

    # -- the background jobs ------------------------------------------------------------
    def _running(self) -> list[Job]:
        with self.jobs_lock:
            return list(self.jobs.values())

    def _job_named(self, name: str) -> Job | None:
        """The job working in the processor's work dir, which is named after the processor (not its id)."""
        return next((job for job in self._running() if job.source.name == name), None)

    def _check_allowed(self, processor: Any) -> None:
        try:
            check_repo(processor.gitrepo, self.git_allow)
        except PermissionDenied as exc:
            self.forget(processor.id)
            raise DeployError(exc.message, hint=exc.hint) from None

    def _start_job(self, source: Source) -> None:
        job = Job(source)
        with self.jobs_lock:
            self.jobs[source.id] = job
        try:
            threading.Thread(target=self._run_job, args=(job,), name=f"pyfi-deploy-{source.name}", daemon=True).start()
        except RuntimeError as exc:  # no thread to be had: nothing runs, so nothing may stay listed
            with self.jobs_lock:
                del self.jobs[source.id]
            raise DeployError(f"cannot start deploying {source.name}: {exc}",
                              hint="the agent's process is out of threads: stop it and start it again") from None

    def _cancel(self, job: Job) -> None:
        """Make the job give up soon, without waiting for it (the agent's loop calls this).

        Its git and pip are ended until the job has ended: ending one only
        would let the job go on to its next step (a short ``git init`` may be
        caught, and then the fetch hangs). The job stays listed until that
        has stopped, so no next deploy of the processor starts meanwhile in
        the work dir whose processes are being ended.
        """
        with job.lock:
            if job.cancelled or job.worked.is_set():
                return
            job.cancelled = True
            work_dir = checkout.processor_dir(self.repos, job.source.name)
            ender = threading.Thread(target=_end_children_of, args=(job, work_dir), daemon=True,
                                     name=f"pyfi-cancel-{job.source.name}")
            try:
                ender.start()
            except RuntimeError:  # out of threads: end what runs now; the job checks before its next step
                children.end(children.working_for(children.deploy_children(), work_dir))
                return
            job.ender = ender

    def _run_job(self, job: Job) -> None:
        try:
            news = self._deploy_if_needed(job)
        finally:
            with job.lock:
                job.worked.set()
            if job.ender is not None:
                job.ender.join()
            with self.jobs_lock:
                self.jobs.pop(job.source.id, None)
            job.done.set()
        if news and self.on_news is not None:
            self.on_news()

    def _deploy_if_needed(self, job: Job) -> bool:
        """Deploy unless the code in place is current; True if that gave news (new code or a new failure)."""
        source = job.source
        failure = self.failures.get(source.id)
        current = self.deployed.get(source.id)
        if current is not None and current.key == source.key and not self._branch_moved(current):
            return False
        if failure and failure.key == source.key and not failure.due():
            return False  # the branch moved again, and deploying it failed lately: wait for the retry
        try:
            result = self._deploy(job)
        except Exception as exc:  # noqa: BLE001 - any failure must be remembered, or the agent would retry at once
            if job.cancelled and not self.stopping:
                return True  # for settings that are gone (and may come back): nothing to remember
            self.failures[source.id] = Failure(source.key, _as_deploy_error(source, exc),
                                               failure.attempts + 1 if failure and failure.key == source.key else 1,
                                               time.monotonic())
            return True
        self.failures.pop(source.id, None)
        self.deployed[source.id] = result
        return True

    def _deploy(self, job: Job) -> Deployed:
        source = job.source
        url, branch, commit, reqs, module = source.key
        sha = checkout.checkout(self.repos, source.name, url, branch=branch, commit=commit,
                                cancelled=lambda: _give_up_if_cancelled(job))
        _give_up_if_cancelled(job)
        path = checkout.checkout_path(self.repos, source.name, sha)
        python = venv.ensure_venv(path, sha, reqs, venv_root=self.venvs, as_worker=self.as_worker)
        self._open_to_workers(path, python)
        _give_up_if_cancelled(job)
        importcheck.check_import(python, path, module, as_worker=self.as_worker)  # code that cannot run replaces none
        return Deployed(source.key, sha, path, python, time.monotonic())

    def clear_builds(self) -> None:
        """Remove what builds apart left when an agent stopped abruptly (called once this agent holds the node)."""
        sandbox.clear(self.repos.parent / sandbox.BUILDS)

    def _open_to_workers(self, path: Path, python: Path) -> None:
        """With -u: the checkout and its environment readable, not writable, by the workers' user (pyfi.agent.runas)."""
        runas = self.as_worker.runas
        if runas is None:
            return
        venv_dir = venv.venv_of(python)
        for tree in (path, venv_dir):
            runas.open_dirs(self.repos.parent, tree)
            runas.share(tree)

    @staticmethod
    def _head_check_due(current: Deployed) -> bool:
        """A followed branch (no fixed commit) is asked for its head every ``HEAD_CHECK`` seconds."""
        return not current.key[2] and time.monotonic() - current.checked >= HEAD_CHECK

    def _branch_moved(self, current: Deployed) -> bool:
        if not self._head_check_due(current):
            return False
        current.checked = time.monotonic()
        url, branch = current.key[:2]
        try:
            mirror = current.path.parent / checkout.MIRROR_DIR  # (in the processor's work dir: see _cancel)
            return checkout.resolve_remote_commit(url, branch, cwd=mirror) != current.sha
        except DeployError:
            return False  # keep serving the code we have; the next check may succeed


def _end_children_of(job: Job, work_dir: Path) -> None:
    deadline = time.monotonic() + CANCEL_LIMIT
    while not job.worked.is_set() and time.monotonic() < deadline:
        children.end(children.working_for(children.deploy_children(), work_dir))
        job.worked.wait(0.05)


def _give_up_if_cancelled(job: Job) -> None:
    if job.cancelled:
        raise DeployError(f"deploying {job.source.name} was cancelled: its settings changed or the agent stopped",
                          hint="none needed")


def _as_deploy_error(source: Source, exc: Exception) -> DeployError:
    if isinstance(exc, DeployError):
        return exc
    log.error("deploying %s failed", source.name, exc_info=exc)
    return DeployError(f"deploying {source.name} failed: {type(exc).__name__}: {exc}", hint="see the agent's log")

