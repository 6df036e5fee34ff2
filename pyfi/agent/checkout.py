"""Fetch processor code from git into one directory per processor and commit.

Layout under the work root::

    <root>/<safe name>/mirror.git   bare cache repository, only ever fetched into
    <root>/<safe name>/<sha>/       plain export of that commit (no .git inside)
    <root>/<safe name>/.lock        serialises deploys of one processor

The repository URL is never written into the mirror's config: it is passed
to every fetch, so credentials stay out of files on disk and a processor
whose URL changed needs no migration. A commit directory appears by an
atomic rename, so its presence alone means "complete" and a restart at a
known commit needs neither git nor the network.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from git import Git
from git.exc import GitCommandError, GitCommandNotFound

from pyfi.errors import DeployError
from pyfi.masking import mask_url
from pyfi.private import private_tree

log = logging.getLogger(__name__)

MIRROR_DIR = "mirror.git"
REMOTE_HEAD_REF = "refs/pyfi/remote-head"
FETCH_TIMEOUT = 300.0
LS_REMOTE_TIMEOUT = 30.0

_FULL_SHA = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")
_COMMIT = re.compile(r"[0-9a-fA-F]{4,64}")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")

#: (markers in git's stderr, problem, fix), first match wins.
_GIT_PROBLEMS = [
    (("could not read username", "could not read password", "authentication failed",
      "permission denied", "terminal prompts disabled", "returned error: 401",
      "returned error: 403"),
     "authentication failed",
     "give this node access: a token in the URL, a git credential helper or an SSH key"),
    (("repository not found", "does not appear to be a git repository", "not found",
      "returned error: 404"),
     "repository not found", "check the processor's repo URL"),
    (("could not resolve host", "failed to connect", "couldn't connect", "connection refused",
      "connection timed out", "network is unreachable", "timeout"),
     "git server unreachable", "check the URL's host and port and this node's network"),
    (("couldn't find remote ref",), "ref not found on the remote",
     "check the processor's branch, or push it"),
]


def safe_name(processor: str) -> str:
    """A directory name for *processor*; a hash suffix keeps altered names unique."""
    if not processor or not processor.strip():
        raise DeployError("processor name is empty", hint="give the processor a name")
    cleaned = _UNSAFE_NAME.sub("_", processor).lstrip(".") or "_"
    if cleaned == processor:
        return cleaned
    return f"{cleaned}-{hashlib.sha256(processor.encode()).hexdigest()[:8]}"


def processor_dir(root: Path | str, processor: str) -> Path:
    return Path(root) / safe_name(processor)


def mirror_path(root: Path | str, processor: str) -> Path:
    """The processor's cache repository (bare), updated by fetch, never re-cloned."""
    return processor_dir(root, processor) / MIRROR_DIR


def checkout_path(root: Path | str, processor: str, commit: str) -> Path:
    """The work directory holding the export of *commit* (a full sha)."""
    return processor_dir(root, processor) / commit.lower()


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on *path* (created if missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def checkout(
    root: Path | str,
    processor: str,
    url: str,
    branch: str | None = None,
    commit: str | None = None,
    *,
    timeout: float = FETCH_TIMEOUT,
    cancelled: Callable[[], None] = lambda: None,
) -> str:
    """Make ``checkout_path(root, processor, sha)`` hold the code; return that sha.

    *commit* (full or abbreviated) wins over *branch*; with neither, the
    remote's default branch is used (empty strings count as not given). A
    commit already exported, or already in the mirror, needs no network.
    *cancelled* raises, before each step that may wait long, if the caller has given up.
    """
    branch, commit = branch or None, commit or None
    _check_url(url)
    _check_branch(branch)
    check_commit(commit)
    if commit and _FULL_SHA.fullmatch(commit.lower()) and checkout_path(root, processor, commit).is_dir():
        return commit.lower()
    base = processor_dir(root, processor)
    with file_lock(base / ".lock"):
        cancelled()  # it may have waited long for the lock: raises if the deploy was called off meanwhile
        mirror = _open_mirror(base / MIRROR_DIR)
        cancelled()  # and before the fetch, which may hang on a silent server
        sha = _resolve(mirror, url, branch, commit, timeout)
        _export(mirror, sha, checkout_path(root, processor, sha))
    log.info("processor %s at %s from %s", processor, sha[:12], mask_url(url))
    return sha


def resolve_remote_commit(url: str, branch: str | None = None, *, timeout: float = LS_REMOTE_TIMEOUT,
                          cwd: Path | None = None) -> str:
    """The sha *branch* (default: the remote's HEAD) points to now, via ``ls-remote``.

    Cheap (no objects are transferred): a reconcile loop compares it with the
    sha it runs to decide whether a restart is due. *cwd*, the processor's
    directory, marks whose check it is (``children.working_for``).
    """
    branch = branch or None
    _check_url(url)
    _check_branch(branch)
    ref = f"refs/heads/{branch}" if branch else "HEAD"
    output = _run_git(cwd, ["ls-remote", "--", url, ref], url, timeout, "ls-remote")  # cwd: whose check it is
    for line in output.splitlines():
        sha, _, name = line.partition("\t")
        if name == ref:
            return sha
    raise DeployError(
        f"{_describe_ref(branch)} not found in {mask_url(url)}",
        hint="check the processor's branch, or leave it empty for the remote's default branch",
    )


def clean(root: Path | str) -> None:
    """Remove every checkout, mirror and virtual environment under *root*."""
    root = Path(root)
    if not root.is_dir():
        return
    for entry in root.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    log.info("cleaned work root %s", root)


def _check_url(url: str) -> None:
    if not url or not url.strip() or url.startswith("-"):
        raise DeployError(f"invalid repository URL {mask_url(url)!r}",
                          hint="set the processor's repo to a git URL or path")


def _check_branch(branch: str | None) -> None:
    if branch is None:
        return
    bad = not branch or branch.startswith("-") or ".." in branch or any(c.isspace() or c in "~^:?*[\\" for c in branch)
    if bad:
        raise DeployError(f"invalid branch name {branch!r}", hint="use a plain branch name like 'main'")


def check_commit(commit: str | None) -> None:
    if commit is not None and not _COMMIT.fullmatch(commit):
        raise DeployError(f"invalid commit {commit!r}", hint="use a hexadecimal commit sha (at least 4 digits)")


def _describe_ref(branch: str | None) -> str:
    return f"branch {branch!r}" if branch else "default branch (HEAD)"


def _open_mirror(mirror: Path) -> Path:
    """The processor's bare mirror, made if missing or left half-made.

    It is made beside and then renamed into place: a ``git init`` ended
    half-way (the agent stopping, the settings changing) leaves a HEAD
    without objects, which git then refuses as "not a git repository".
    """
    if not all((mirror / part).exists() for part in ("HEAD", "objects", "refs")):
        fresh = mirror.with_name(mirror.name + ".new")
        for stale in (mirror, fresh):
            if stale.exists():
                shutil.rmtree(stale)
        fresh.mkdir(parents=True)
        _run_git(fresh, ["init", "--bare", "--quiet"], "", None, "init")
        fresh.rename(mirror)
    return mirror


def _resolve(mirror: Path, url: str, branch: str | None, commit: str | None, timeout: float) -> str:
    if commit:
        return _resolve_commit(mirror, url, commit, timeout)
    _fetch(mirror, url, ["+HEAD:" + REMOTE_HEAD_REF] if branch is None else [], timeout)
    sha = _local_commit(mirror, f"refs/remotes/origin/{branch}" if branch else REMOTE_HEAD_REF)
    if sha is None:
        raise DeployError(
            f"{_describe_ref(branch)} not found in {mask_url(url)}",
            hint="check the processor's branch, or leave it empty for the remote's default branch",
        )
    return sha


def _resolve_commit(mirror: Path, url: str, commit: str, timeout: float) -> str:
    sha = _local_commit(mirror, commit)
    if sha is None:
        _fetch(mirror, url, [], timeout)
        sha = _local_commit(mirror, commit)
    if sha is None and _FULL_SHA.fullmatch(commit.lower()):
        # Not on any branch or tag: servers may still serve it by sha.
        with contextlib.suppress(DeployError):
            _run_git(mirror, ["fetch", "--quiet", "--", url, commit.lower()], url, timeout, "fetch")
        sha = _local_commit(mirror, commit)
    if sha is None:
        raise DeployError(
            f"commit {commit} not found in {mask_url(url)}",
            hint="push that commit, or set the processor's commit to one on the remote",
        )
    return sha


def _fetch(mirror: Path, url: str, extra_refspecs: list[str], timeout: float) -> None:
    """Fetch every branch and tag (so a later branch switch is a fetch too)."""
    refspecs = ["+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*", *extra_refspecs]
    _run_git(mirror, ["fetch", "--prune", "--quiet", "--", url, *refspecs], url, timeout, "fetch")


def _local_commit(mirror: Path, rev: str) -> str | None:
    try:
        out = Git(str(mirror)).execute(
            ["git", "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"]
        )
    except GitCommandError:
        return None
    return str(out).strip() or None


def _export(mirror: Path, sha: str, dest: Path) -> None:
    """Write the tree of *sha* to *dest* via a temporary directory and a rename."""
    if dest.is_dir():
        return
    staging = dest.with_name(f".{dest.name}.tmp{os.getpid()}")
    if staging.exists():
        shutil.rmtree(staging)
    with tempfile.TemporaryFile() as archive:
        Git(str(mirror)).execute(["git", "archive", "--format=tar", sha], output_stream=archive)
        archive.seek(0)
        with tarfile.open(fileobj=archive) as tar:
            _extract(tar, staging)
    private_tree(staging)  # git keeps 0644 and 0755: the code is the agent's user's alone
    os.rename(staging, dest)


def _extract(tar: tarfile.TarFile, dest: Path) -> None:
    dest.mkdir(parents=True)
    if hasattr(tarfile, "data_filter"):
        try:
            tar.extractall(dest, filter="data")
        except tarfile.TarError as exc:  # e.g. a link pointing outside the tree
            raise DeployError(f"cannot unpack the repository's tree: {exc}",
                              hint="remove links that point outside the repository") from None
        return
    for member in tar.getmembers():  # Python without extraction filters: refuse escapes
        name = Path(member.name)
        if name.is_absolute() or ".." in name.parts or member.issym() or member.islnk():
            raise DeployError(f"unsafe path {member.name!r} in the repository", hint="remove links and absolute paths")
    tar.extractall(dest)


def _git_env(timeout: float | None) -> dict[str, str]:
    """Never prompt: a missing credential must fail now, not hang the agent."""
    env = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "SSH_ASKPASS": "true"}
    if "GIT_SSH_COMMAND" not in os.environ:
        connect = int(min(timeout or 30, 30))
        env["GIT_SSH_COMMAND"] = f"ssh -o BatchMode=yes -o ConnectTimeout={connect}"
    return env


def _run_git(cwd: Path | None, args: list[str], url: str, timeout: float | None, action: str) -> str:
    try:
        out = Git(str(cwd) if cwd else None).execute(  # a session of its own: a stopping agent ends it, helpers too
            ["git", *args], env=_git_env(timeout), kill_after_timeout=timeout, start_new_session=True
        )
    except GitCommandNotFound:
        raise DeployError("git is not installed on this node", hint="install git") from None
    except GitCommandError as exc:
        raise _git_failure(action, url, str(exc.stderr or "")) from None
    return str(out)


def _git_failure(action: str, url: str, stderr: str) -> DeployError:
    text = mask_url(stderr)
    lowered = text.lower()
    for markers, problem, fix in _GIT_PROBLEMS:
        if any(marker in lowered for marker in markers):
            log.warning("git %s %s: %s", action, mask_url(url), _git_reason(text))
            return DeployError(f"cannot {action} {mask_url(url)}: {problem}", hint=fix)
    return DeployError(
        f"git {action} of {mask_url(url)} failed: {_git_reason(text) or 'no message'}",
        hint="run the same git command on this node to see why",
    )


def _git_reason(text: str) -> str:
    """Git's first ``fatal:``/``error:`` line, else its last line."""
    lines = [line.strip().removeprefix("stderr:").strip().strip("'\"") for line in text.splitlines()]
    lines = [line for line in lines if line]
    fatal = [line for line in lines if line.startswith(("fatal:", "error:"))]
    return (fatal or lines or [""])[0 if fatal else -1]
