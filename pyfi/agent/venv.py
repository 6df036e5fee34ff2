"""One isolated virtual environment per processor checkout.

The environment is created by the stdlib ``venv`` module *without* pip and
with ``system_site_packages=True``: creation takes about 0.1 s instead of ~3 s,
pyfi, celery and pip itself are importable from the host, and pip runs as
``<venv python> -m pip`` so it installs into the venv (host packages count as
already satisfied, which keeps deploys offline whenever the host has them).

Environments are cached under a key of commit + requirements + interpreter;
a stamp file written last marks one as complete, so a half-built venv (crash,
pip failure) is rebuilt instead of used.

How the checkout itself becomes importable:

* no ``setup.py``/``pyproject.toml``: a ``.pth`` file puts the checkout (and
  its ``src/``) on ``sys.path``; pip is not run at all;
* a package whose build backend is installed on the host:
  ``pip install --no-deps --no-build-isolation`` (offline, ~1 s);
* a package whose backend is missing (typically plain setuptools on a host
  without ``wheel``): the same ``.pth`` link, because an isolated build would
  need an index to download the backend from.

Then ``pip install -r requirements.txt`` when the repository has one (its
lines are the repository's own: pip reads them as the build's user, inside
the build), and ``pip install`` of the processor's extra requirements, which
must be index requirements (:mod:`pyfi.core.requirements`, checked again
here before pip runs). With ``agent start -u`` every pip runs apart
(:mod:`pyfi.agent.sandbox`) and root copies what it installed into the
environment (:mod:`pyfi.agent.harvest`): the checkout and the environment
are never the workers' user's.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path
from typing import Sequence

from pyfi.agent import sandbox
from pyfi.agent.checkout import file_lock, mask_url
from pyfi.agent.harvest import harvest
from pyfi.agent.importcheck import AS_AGENT, AsWorker
from pyfi.core.requirements import check_requirements
from pyfi.errors import DeployError, InvalidInput
from pyfi.private import private_tree

log = logging.getLogger(__name__)

STAMP = ".pyfi-ready"
LINK_PTH = "pyfi-checkout.pth"
PARENT_PTH = "pyfi-parent-env.pth"
PIP_TIMEOUT = 900.0
#: What pip assumes for a project without a [build-system] table.
LEGACY_BUILD_REQUIRES = ("setuptools>=40.8.0", "wheel")


def venv_of(python: Path | str) -> Path:
    """The virtual environment an interpreter of :func:`venv_python` belongs to."""
    return Path(python).parent.parent


def venv_python(venv_dir: Path | str) -> Path:
    """The interpreter of the virtual environment at *venv_dir*."""
    if os.name == "nt":
        return Path(venv_dir) / "Scripts" / "python.exe"
    return Path(venv_dir) / "bin" / "python"


def venv_key(checkout_dir: Path | str, commit: str, requirements: Sequence[str] = ()) -> str:
    """``<sha12>-<hash12>``, the hash over commit, requirements.txt, extra requirements, interpreter."""
    digest = hashlib.sha256()
    req_file = Path(checkout_dir) / "requirements.txt"
    parts = [commit, sys.version, sys.executable, req_file.read_text("utf-8", "replace") if req_file.is_file() else ""]
    for part in [*parts, *requirements]:
        digest.update(part.encode() + b"\0")
    return f"{commit[:12]}-{digest.hexdigest()[:12]}"


def ensure_venv(
    checkout_dir: Path | str,
    commit: str,
    requirements: Sequence[str] = (),
    *,
    venv_root: Path | str | None = None,
    timeout: float = PIP_TIMEOUT,
    as_worker: AsWorker = AS_AGENT,
) -> Path:
    """Return the python of a ready venv for *checkout_dir*, building it if needed.

    *requirements* are extra pip requirement strings of the processor. The
    venv lives in ``<venv_root>/<venv_key(...)>`` (default ``venv_root``:
    ``<checkout_dir>/../venvs``). Raises DeployError when pip fails.
    ``as_worker``: pip runs as the agent's workers run (their environment;
    with ``agent start -u``, their user, apart: :mod:`pyfi.agent.sandbox`),
    since a build runs the project's code.
    """
    checkout_dir = Path(checkout_dir).resolve()
    extras = _checked_requirements(requirements)
    root = Path(venv_root).resolve() if venv_root else checkout_dir.parent / "venvs"
    venv_dir = root / venv_key(checkout_dir, commit, extras)
    if _is_ready(venv_dir):
        return venv_python(venv_dir)
    with file_lock(root / f".{venv_dir.name}.lock"):
        if not _is_ready(venv_dir):
            _build(venv_dir, checkout_dir, extras, timeout, as_worker)
            _write_stamp(venv_dir, commit, checkout_dir, extras)
    return venv_python(venv_dir)


def _checked_requirements(requirements: str | Sequence[str]) -> list[str]:
    """The processor's extra requirements, each an index requirement (:mod:`pyfi.core.requirements`)."""
    try:
        return check_requirements(requirements)
    except InvalidInput as exc:
        raise DeployError(exc.message, hint=exc.hint) from None


def _is_ready(venv_dir: Path) -> bool:
    return (venv_dir / STAMP).is_file() and venv_python(venv_dir).exists()


def _write_stamp(venv_dir: Path, commit: str, checkout_dir: Path, extras: list[str]) -> None:
    """Written last and atomically: its presence means the venv is complete."""
    tmp = venv_dir / f"{STAMP}.tmp"
    info = {"commit": commit, "checkout": str(checkout_dir), "requirements": extras}
    tmp.write_text(json.dumps(info), encoding="utf-8")
    os.replace(tmp, venv_dir / STAMP)


def _build(venv_dir: Path, checkout_dir: Path, extras: list[str], timeout: float, as_worker: AsWorker) -> None:
    if venv_dir.exists():
        log.info("rebuilding incomplete venv %s", venv_dir)
        shutil.rmtree(venv_dir)
    venv.create(venv_dir, system_site_packages=True, with_pip=False, symlinks=os.name != "nt")
    _inherit_parent_env(venv_dir)
    installs = _installs_project(checkout_dir)
    steps = _pip_steps(checkout_dir, installs, extras)
    try:
        if as_worker.runas is None:
            for args in steps:
                _pip(venv_python(venv_dir), args, checkout_dir, timeout, as_worker)
        elif steps:  # (a plain module needs no pip: nothing of the repository runs)
            _build_apart(venv_dir, checkout_dir, steps, timeout, as_worker)
    except BaseException:
        shutil.rmtree(venv_dir, ignore_errors=True)
        raise
    if not installs:
        _link_source(venv_dir, checkout_dir)
    private_tree(venv_dir)  # venv copies its scripts' modes (0644)
    log.info("venv ready: %s", venv_dir)


def _pip_steps(checkout_dir: Path, installs: bool, extras: list[str]) -> list[list[str]]:
    """The pip commands that install the project (when it *installs*) and its requirements."""
    steps = []
    if installs:
        steps.append(["install", "--no-deps", "--no-build-isolation", "-q", str(checkout_dir)])
    if (checkout_dir / "requirements.txt").is_file():
        steps.append(["install", "-q", "-r", str(checkout_dir / "requirements.txt")])
    if extras:
        steps.append(["install", "-q", *extras])
    return steps


def _build_apart(venv_dir: Path, checkout_dir: Path, steps: list[list[str]], timeout: float,
                 as_worker: AsWorker) -> None:
    """With -u: pip runs as the workers' user in a scratch copy (pyfi.agent.sandbox); root copies out what it installed."""
    runas = as_worker.runas
    assert runas is not None
    workdir = venv_dir.parent.parent
    if not checkout_dir.is_relative_to(workdir):
        raise DeployError(f"checkout {checkout_dir} is outside the agent's work dir {workdir}", hint="see the agent's log")
    runas.open_dirs(workdir, checkout_dir.parent)  # the way to the checkout's and the environment's paths
    runas.open_dirs(workdir, venv_dir.parent)
    apart = sandbox.prepare(workdir / sandbox.BUILDS, runas, checkout_dir, venv_dir)
    try:
        for args in steps:
            _pip(venv_python(venv_dir), args, checkout_dir, timeout, as_worker, apart)
        site = _site_packages(venv_dir).relative_to(venv_dir)
        copied = harvest(apart.scratch / "venv", venv_dir, site, runas.uid)
        log.debug("copied %d installed files into %s", copied, venv_dir)
    finally:
        sandbox.remove(apart)


def _site_packages(venv_dir: Path) -> Path:
    found = sorted(venv_dir.glob("lib/python*/site-packages")) or sorted(venv_dir.glob("Lib/site-packages"))
    if not found:
        raise DeployError(f"venv {venv_dir} has no site-packages", hint="remove it and deploy again")
    return found[0]


def _inherit_parent_env(venv_dir: Path) -> None:
    """Let a venv made from inside a venv see that venv's packages too.

    ``system_site_packages`` only reaches the *base* interpreter's packages,
    so when the agent itself runs in a virtualenv (where pyfi and celery are
    installed) its site directories are added with ``site.addsitedir``, which
    also honours their own .pth files (editable installs).
    """
    if sys.prefix == sys.base_prefix:
        return
    import site

    lines = [f"import site; site.addsitedir({path!r})" for path in site.getsitepackages()]
    (_site_packages(venv_dir) / PARENT_PTH).write_text("\n".join(lines) + "\n", encoding="utf-8")


def _link_source(venv_dir: Path, checkout_dir: Path) -> None:
    """Put the checkout (and a ``src/`` layout) on the venv's sys.path."""
    paths = [checkout_dir] + ([checkout_dir / "src"] if (checkout_dir / "src").is_dir() else [])
    (_site_packages(venv_dir) / LINK_PTH).write_text("".join(f"{p}\n" for p in paths), encoding="utf-8")


def _installs_project(checkout_dir: Path) -> bool:
    """The checkout is a package that can be built offline (else it is linked: :func:`_link_source`)."""
    if not ((checkout_dir / "setup.py").is_file() or (checkout_dir / "pyproject.toml").is_file()):
        return False
    missing = missing_build_requirements(checkout_dir)
    if missing:
        log.info("linking %s instead of installing it: build needs %s (not installed here)",
                 checkout_dir, ", ".join(missing))
        return False
    return True


def missing_build_requirements(checkout_dir: Path | str) -> list[str]:
    """Build requirements of the project in *checkout_dir* not installed on this host."""
    requires, backend = _build_system(Path(checkout_dir))
    if backend.startswith("setuptools") and _version_tuple("setuptools") < (70, 1):
        requires = [*requires, "wheel"]  # bdist_wheel moved into setuptools in 70.1
    return [req for req in requires if not _is_installed(req)]


def _build_system(checkout_dir: Path) -> tuple[list[str], str]:
    pyproject = checkout_dir / "pyproject.toml"
    if not pyproject.is_file():
        return list(LEGACY_BUILD_REQUIRES), "setuptools.build_meta:__legacy__"
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ImportError:
            return ["tomllib (to read pyproject.toml)"], ""
    try:
        table = tomllib.loads(pyproject.read_text("utf-8")).get("build-system", {})
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DeployError(f"{pyproject} is not valid TOML: {exc}", hint="fix pyproject.toml and push") from None
    if not table:
        return list(LEGACY_BUILD_REQUIRES), "setuptools.build_meta:__legacy__"
    return list(table.get("requires", [])), str(table.get("build-backend", "setuptools.build_meta:__legacy__"))


def _is_installed(requirement: str) -> bool:
    try:
        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError:
        name = re.split(r"[\s<>=!~;\[]", requirement.strip(), maxsplit=1)[0]
        return _installed_version(name) is not None
    try:
        req = Requirement(requirement)
    except InvalidRequirement:
        return False
    if req.marker is not None and not req.marker.evaluate():
        return True
    version = _installed_version(req.name)
    return version is not None and req.specifier.contains(version, prereleases=True)


def _installed_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _version_tuple(name: str) -> tuple[int, ...]:
    numbers = re.findall(r"\d+", _installed_version(name) or "0")[:2]
    return tuple(int(n) for n in numbers)


def _pip(python: Path, args: list[str], cwd: Path, timeout: float, as_worker: AsWorker = AS_AGENT,
         apart: sandbox.Apart | None = None) -> None:
    """Run ``<venv python> -m pip <args>`` as the workers run (apart, with -u); DeployError with pip's own reason."""
    command = [str(python), "-m", "pip", *args]
    log.debug("running pip: %s", mask_url(" ".join(command)))
    env = {**(as_worker.env if as_worker.env is not None else os.environ), "PIP_DISABLE_PIP_VERSION_CHECK": "1",
           "PIP_NO_INPUT": "1"}
    try:
        if apart is not None:
            result = apart.run(command, env, timeout)
        else:
            result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                                    start_new_session=True)  # (Deployer.stop ends it)
    except OSError as exc:
        raise DeployError(f"cannot run {python}: {exc.strerror}", hint="remove the venv and deploy again") from None
    except subprocess.TimeoutExpired:
        raise DeployError(f"pip {args[0]} for {cwd} took over {timeout:g}s",
                          hint="check the package index is reachable, or raise the timeout") from None
    if result.returncode != 0:
        _pip_failed(python, args, cwd, result)


def _pip_failed(python: Path, args: list[str], cwd: Path, result: subprocess.CompletedProcess) -> None:
    reason = last_meaningful_line(result.stderr + "\n" + result.stdout)
    if result.returncode == sandbox.FAILED and reason.startswith(sandbox.MARK):
        raise DeployError(f"cannot start the build of {cwd} apart: {reason}", hint="see the agent's log")
    if "No module named pip" in reason:
        raise DeployError(f"pip is not available to {python}", hint="install pip for the agent's Python")
    raise DeployError(f"pip {args[0]} failed for {cwd}: {reason}",
                      hint="fix the processor's requirements (requirements.txt or its requirements list)")


def last_meaningful_line(output: str) -> str:
    """pip's last ``ERROR:`` line, else its last line that is not a notice or hint."""
    lines = [line.strip() for line in mask_url(output).splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR:")]
    if errors:
        return errors[-1]
    chatter = ("[notice]", "note:", "hint:", "WARNING:")
    useful = [line for line in lines if not line.startswith(chatter)]
    return (useful or lines or ["no output"])[-1]
