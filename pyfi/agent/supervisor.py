"""Worker processes an agent supervises: spawn, stop gracefully, adopt after a restart.

Each worker has a run directory holding its control file (pause/run), its
state file (written by the worker), its log, and ``meta.json`` (pid, commit,
spec signature) so a restarted agent can adopt it instead of starting a
duplicate.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

from pyfi.agent.runas import RunAs
from pyfi.worker.control import PAUSE, RUN, error_path, problems_path, read_line, read_state, state_path, \
    supervised_path, write_command
from pyfi.worker import rundir
from pyfi.worker.progress import progress_path, stalled_for
from pyfi.worker.credentials import Credentials
from pyfi.worker.processes import pid_alive
from pyfi.worker.standby import GO, STANDBY

log = logging.getLogger("pyfi.agent")

STOP_GRACE = 15.0  # seconds a worker gets to finish its calls before SIGKILL


@dataclass
class Handle:
    processor_id: str
    processor: str
    commit: str
    signature: str
    pid: int
    run_dir: str
    started: float = field(default_factory=time.time)
    stopping_since: float | None = None
    killed: bool = False  # it did not stop within the grace period
    paused: bool = False
    concurrency: int | None = None  # the pool size the agent asks for (a deployment's), or the worker's own
    proc: subprocess.Popen | None = field(default=None, repr=False, compare=False)
    commanded: bool = field(default=False, repr=False, compare=False)  # this agent wrote its control file

    @property
    def control(self) -> Path:
        return Path(self.run_dir) / "control"

    def alive(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        return pid_alive(self.pid)

    def exit_code(self) -> int | None:
        return self.proc.poll() if self.proc is not None else None

    def renew_supervision(self) -> None:
        """Tell the worker its agent is alive (one that hears nothing stops consuming: pyfi.worker.control)."""
        try:
            rundir.replace(supervised_path(self.control), b"")
        except OSError:  # its run directory is gone: so is the worker, which the loop notices
            pass

    def set_paused(self, paused: bool) -> None:
        """Ask the worker to stop or start consuming; the file is written (and the worker woken) on a change only."""
        if paused != self.paused or not self.commanded:
            self.paused, self.commanded = paused, True
            write_command(self.control, PAUSE if paused else RUN, self.concurrency)

    def set_concurrency(self, concurrency: int | None) -> None:
        """Ask the worker to grow or shrink its pool (None: leave it as it started)."""
        if concurrency != self.concurrency:
            self.concurrency = concurrency
            write_command(self.control, PAUSE if self.paused else RUN, concurrency)
            save_meta(self)

    def start_error(self) -> str | None:
        """Why the worker could not start, if it said."""
        return read_line(error_path(self.control))

    def problems(self) -> str | None:
        """What the running worker cannot do (sockets whose function is missing), if anything."""
        return read_line(problems_path(self.control))

    def last_log_line(self) -> str:
        """The last line the worker wrote to its log (why it is not up yet, when it says)."""
        return last_line(Path(self.run_dir) / "worker.log")

    def reported_state(self) -> str | None:
        """What the worker says it is doing ("running", "paused"), or None before it is up."""
        return read_state(self.control)

    def stalled(self) -> float:
        """Seconds the worker has held a call that a free pool process does not take (:mod:`pyfi.worker.progress`)."""
        return stalled_for(self.control)

    def terminate(self) -> None:
        """Ask for a warm shutdown (Celery finishes running calls on SIGTERM)."""
        if self.stopping_since is None:
            self.stopping_since = time.monotonic()
            _signal(self.pid, signal.SIGTERM)

    def kill(self) -> None:
        """Stop at once: SIGKILL to its process group; its calls in flight go back to their queues."""
        self.killed = True
        _signal_group(self.pid, signal.SIGKILL)

    def reap(self) -> bool:
        """True once the process is gone; SIGKILL after the grace period."""
        if not self.alive():
            return True
        if self.stopping_since is not None and time.monotonic() - self.stopping_since > STOP_GRACE:
            if not self.killed:
                log.warning("the worker of %s (pid %d) did not stop within %.0f s: killed", self.processor, self.pid,
                            STOP_GRACE)
            self.kill()
        return False


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # workers lead their own session: take the pool children too
    except (ProcessLookupError, PermissionError):
        _signal(pid, sig)


def spawn(python: str, processor_id: str, processor: str, checkout: str, commit: str, signature: str,
          run_dir: Path, node: str, env: dict[str, str], credentials: Credentials, paused: bool = False,
          extra_args: tuple[str, ...] = (), runas: RunAs | None = None) -> Handle:
    """Start ``pyfi worker start`` for one processor with the checkout's interpreter; hand it its credentials."""
    prepare_run_dir(run_dir, paused, runas)
    proc = _launch(worker_argv(python, processor, checkout, run_dir, node, extra_args), run_dir, env, checkout, runas,
                   stdin=subprocess.PIPE)
    _hand_over(proc, credentials.line())
    handle = Handle(processor_id, processor, commit, signature, proc.pid, str(run_dir), proc=proc)
    save_meta(handle)
    return handle


def worker_argv(python: str, processor: str, checkout: str, run_dir: Path, node: str,
                extra_args: tuple[str, ...]) -> list[str]:
    return [python, "-m", "pyfi.worker", "-n", processor, "--path", checkout, "--control", str(run_dir / "control"),
            "--node", node, "--credentials-on-stdin", *extra_args]


def flag_text(args: tuple[str, ...], flag: str) -> str | None:
    """The text given to ``flag`` in a worker command line, if any."""
    return next((value for given, value in zip(args, args[1:], strict=False) if given == flag), None)


def flag_value(args: tuple[str, ...], flag: str) -> int | None:
    """The number given to ``flag`` in a worker command line, if any."""
    value = flag_text(args, flag)
    return int(value) if value is not None and value.isdigit() else None


def _hand_over(proc: subprocess.Popen, text: str) -> bool:
    """Write ``text`` to the process's stdin and close it; False if it died meanwhile."""
    try:
        proc.stdin.write(text.encode())
        proc.stdin.close()
    except OSError:
        return False
    return True


def prepare_run_dir(run_dir: Path, paused: bool, runas: RunAs | None = None) -> None:
    """The control file says what to do from the first moment; no state or error of an earlier life.

    With ``runas`` (``agent start -u``) the directory is that user's: its worker writes its state there.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    if runas is not None:
        runas.own(run_dir)
    write_command(run_dir / "control", PAUSE if paused else RUN)
    for report in (state_path, error_path, problems_path, progress_path):
        report(run_dir / "control").unlink(missing_ok=True)
    rundir.replace(supervised_path(run_dir / "control"), b"")  # its agent is alive (renewed every second)


def last_line(log: Path, limit: int = 300) -> str:
    """The last non-empty line of a log (read from its end), cut to ``limit`` characters."""
    text = rundir.read_text(log, 4096, tail=True) or ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:limit] if lines else ""


def _launch(argv: list[str], run_dir: Path, env: dict[str, str], cwd: str, runas: RunAs | None,
            stdin: int = subprocess.DEVNULL) -> subprocess.Popen:
    as_user = runas.process_kwargs() if runas is not None else {}
    with open(rundir.open_log(run_dir / "worker.log"), "ab") as log:
        return subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=stdin,
                                cwd=cwd, start_new_session=True, **as_user)


@dataclass
class Spare:
    """A worker process that has imported everything and waits for go (``pyfi.worker.standby``).

    ``key`` is what its command line depends on: a spare serves only a start
    with the same processor name, interpreter and checkout.
    """

    key: tuple
    run_dir: Path
    proc: subprocess.Popen = field(repr=False)
    booted: bool = False

    @property
    def processor(self) -> str:
        return self.key[0]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def ready(self) -> bool:
        """Done importing (it wrote its state ``standby``), or dead: booting no more."""
        if not self.booted:  # asked every tick: read the state file only until it says so
            self.booted = read_state(self.run_dir / "control") == STANDBY
        return self.booted or not self.alive()

    def take(self, processor_id: str, commit: str, signature: str, paused: bool,
             credentials: Credentials) -> Handle | None:
        """Turn the spare into the processor's worker, with its credentials; None if it died meanwhile."""
        if not self.alive():
            return None
        prepare_run_dir(self.run_dir, paused)
        if not _hand_over(self.proc, f"{GO}\n{credentials.line()}"):  # it died between the check and the write
            return None
        handle = Handle(processor_id, self.processor, commit, signature, self.proc.pid, str(self.run_dir), proc=self.proc)
        save_meta(handle)
        return handle

    def discard(self) -> None:
        """End of file on its stdin makes it exit; it has touched no broker or database yet."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        _signal(self.proc.pid, signal.SIGTERM)


def spawn_spare(python: str, processor: str, checkout: str, run_dir: Path, node: str, env: dict[str, str],
                extra_args: tuple[str, ...] = (), runas: RunAs | None = None) -> Spare:
    """Start a standby worker for ``processor``; ``Spare.take`` starts it for real."""
    prepare_run_dir(run_dir, paused=True, runas=runas)
    argv = [*worker_argv(python, processor, checkout, run_dir, node, extra_args), "--standby"]
    proc = _launch(argv, run_dir, env, checkout, runas, stdin=subprocess.PIPE)
    return Spare((processor, python, checkout), run_dir, proc)


#: what a handle knows only in the agent that made it
NOT_SAVED = ("proc", "stopping_since", "killed", "commanded")


def save_meta(handle: Handle) -> None:
    data = {f.name: getattr(handle, f.name) for f in fields(handle) if f.name not in NOT_SAVED}
    rundir.replace(Path(handle.run_dir) / "meta.json", json.dumps(data).encode())


def adopt(run_root: Path) -> list[Handle]:
    """Workers still running from a previous agent life (newest first)."""
    found = []
    for meta in run_root.glob("*/meta.json"):
        try:
            handle = Handle(**json.loads(rundir.read_text(meta) or ""))
        except (ValueError, TypeError):
            continue
        if pid_alive(handle.pid) and _is_worker(handle.pid, handle.processor):
            found.append(handle)
    return sorted(found, key=lambda h: h.started, reverse=True)


def prune(run_root: Path, processor_id: str, keep: int = 3, spare: Path | None = None) -> None:
    """Remove run dirs of finished workers, keeping the newest few for their logs (and the spare's)."""
    dirs = sorted(run_root.glob(f"{processor_id}.*"), key=lambda d: d.name, reverse=True)
    for run_dir in dirs[keep:]:
        if run_dir == spare:
            continue
        try:
            pid = json.loads(rundir.read_text(run_dir / "meta.json") or "")["pid"]
        except (ValueError, KeyError, TypeError):
            pid = None
        if pid is None or not pid_alive(pid):
            shutil.rmtree(run_dir, ignore_errors=True)


def _is_worker(pid: int, processor: str) -> bool:
    """Guard against pid reuse: the process must be our worker for that processor."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return False
    return b"pyfi.worker" in argv and processor.encode() in argv
