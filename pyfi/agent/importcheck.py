"""Does a processor's module import with its new code? Asked as the last step of a deploy.

Why at deploy time: a deploy that fails leaves the processor's worker
serving the code it has (``Deployer.ready``), while a worker that fails to
boot has already replaced it. So a commit that no longer imports does not
take the processor down: the old worker keeps serving and the import error
is shown next to its status. The check loads the module as the worker does
(:func:`pyfi.worker.loader.load_module`), so a module that is not a file of
the checkout (``-m os``, a library of the environment) fails the deploy.
"""
from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyfi.agent.runas import RunAs
from pyfi.errors import DeployError

IMPORT_TIMEOUT = 60.0
MARK = "pyfi-import-check"  # in the check's command line, so that a stopping agent finds and ends it (children.py)
REFUSED = 3  # the check's exit code when pyfi refused the module (its one-line reason on stderr)
# argv: [-c, MARK, module, checkout]; the module's name is data, never code
_SCRIPT = (
    "import sys\n"
    "from pyfi.errors import PyfiError\n"
    "from pyfi.worker.loader import load_module\n"
    "try:\n"
    "    load_module(sys.argv[2], sys.argv[3])\n"
    "except PyfiError as exc:\n"
    f"    print(exc, file=sys.stderr); sys.exit({REFUSED})\n"
)


@dataclass(frozen=True)
class AsWorker:
    """How the agent runs processor code (a worker, this check, a build): the environment and, with -u, the user."""

    env: dict[str, str] | None = None
    runas: RunAs | None = None

    @property
    def user(self) -> str | None:
        return self.runas.user if self.runas is not None else None

    def process_kwargs(self) -> dict[str, Any]:
        """``subprocess`` arguments that start a process as the workers' user (none without -u)."""
        return self.runas.process_kwargs() if self.runas is not None else {}


#: how the agent runs code without -u: as itself, with its own environment
AS_AGENT = AsWorker()


def check_import(python: Path, checkout: Path, module: str, timeout: float = IMPORT_TIMEOUT,
                 as_worker: AsWorker = AS_AGENT) -> None:
    """Import *module* from *checkout* with the environment's *python*, as the worker will; DeployError if it fails."""
    command = [str(python), "-c", _SCRIPT, MARK, module, str(checkout)]
    try:
        done = subprocess.run(command, cwd=checkout, capture_output=True, text=True, timeout=timeout,
                              start_new_session=True, stdin=subprocess.DEVNULL, env=as_worker.env,
                              **as_worker.process_kwargs())
    except subprocess.TimeoutExpired:
        raise DeployError(f"importing module {module!r} took more than {timeout:.0f} s",
                          "do slow work in the functions, not when the module is imported") from None
    except OSError as exc:
        raise DeployError(f"cannot run {python} to import module {module!r}: {exc}", "see the agent's log") from None
    if done.returncode == REFUSED:
        raise DeployError(_exception_line(done.stderr))
    if done.returncode != 0:
        raise DeployError(f"cannot import module {module!r}: {_exception_line(done.stderr)}",
                          "fix the processor's code or its -m/--module")


def _exception_line(stderr: str) -> str:
    """The traceback's last line, ``Type: message``."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return lines[-1] if lines else "the interpreter exited without a message"
