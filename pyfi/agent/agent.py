"""The agent: make this node run what the database says it should.

``reconcile_once`` compares the desired state (processors for this node,
their code, sockets, concurrency and requested status) with the workers it
supervises, converges one step, and writes ``status`` back. ``run`` is that
in a loop, plus heartbeats, until asked to stop; a database outage pauses
the loop, never the workers (:mod:`pyfi.agent.outage`).
"""
from __future__ import annotations

import datetime as dt
import logging
import socket as _socket
import threading
import time
from pathlib import Path
from typing import Callable

from kombu.exceptions import KombuError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from pyfi.agent import MAX_SPARES, NODE_NAME, NODE_NAME_RULE, STALLED_AFTER
from pyfi.agent import node as node_rows
from pyfi.agent.bookkeeping import Bookkeeping
from pyfi.agent.checkout import clean as clean_workdir
from pyfi.agent.deploy import Deployed, Deployer
from pyfi.agent.desired import desired
from pyfi.agent.giveback import give_back_calls
from pyfi.agent.lostnodes import LostNodes
from pyfi.agent.handover import worker_credentials, worker_env
from pyfi.agent.importcheck import AsWorker
from pyfi.agent.lock import NodeLock
from pyfi.agent.outage import DatabaseWatch, database_away
from pyfi.agent.runas import RunAs
from pyfi.agent.spares import SpareKeeping
from pyfi.agent.stalls import Stalls
from pyfi.agent.leftovers import Tidying
from pyfi.agent.stopping import Stopping
from pyfi.agent.supervisor import Handle, Spare, adopt, flag_text, flag_value, prune, spawn
from pyfi.config import Settings
from pyfi.core import network, worker_logins
from pyfi.db.engine import session_scope
from pyfi.db.models import Processor
from pyfi.enums import AgentStatus, ProcessorStatus
from pyfi.errors import DeployError, InvalidInput, PyfiError
from pyfi.messaging.doorbell import Doorbell, ring
from pyfi.scheduler.beat import Beat
from pyfi.worker.credentials import Credentials
from pyfi.worker.spec import spec_of

log = logging.getLogger("pyfi.agent")

TICK = 0.5
FAST_TICK = 0.1  # while a worker is changing state: show its new state as soon as it has one
CRASH_BACKOFF = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
STOPPED_STATES = (ProcessorStatus.STOPPED, ProcessorStatus.REMOVED)
SLOW_START = 20.0  # seconds after which a worker still starting shows what it last logged
SWEEP_LOGINS = 30.0  # seconds between looks for workers' database logins to drop


class Agent(SpareKeeping, Stopping, Tidying, Stalls, Bookkeeping):
    def __init__(self, settings: Settings, name: str | None = None, workdir: Path | None = None,
                 port: int | None = None, worker_args: tuple[str, ...] = (), run_as: str | None = None,
                 monitor_only: bool = False, spares: int = MAX_SPARES, clean: bool = False,
                 say: Callable[[str], None] = log.info, stalled_after: float = STALLED_AFTER) -> None:
        """``clean``: wipe the work dir when starting (``agent start --clean``), once this agent holds the node.

        ``say``: where a stopping agent tells what it waits for (``agent start``: stderr).
        """
        self.settings = settings
        self.worker_args, self.run_as, self.monitor_only = worker_args, run_as, monitor_only
        self.runas = RunAs.named(run_as) if run_as else None  # agent start -u: processor code runs as that user
        self.row_status = AgentStatus.MONITORING if monitor_only else AgentStatus.RUNNING
        self.max_spares = spares  # 0: start every worker cold
        self.stalled_after = stalled_after  # a worker holding calls no pool process takes is restarted after this
        self.pool_size = flag_value(worker_args, "--concurrency")  # agent start -po: every worker's processes
        self.name = name or _socket.gethostname()
        if not NODE_NAME.fullmatch(self.name):  # it becomes a directory: never one outside PYFI_HOME
            raise InvalidInput(f"{self.name!r} is not a node name", NODE_NAME_RULE)
        self.workdir = workdir or settings.home / "agents" / self.name
        self.run_root = self.workdir / "run"
        self.worker_home = self.workdir / "home"  # its workers' PYFI_HOME
        self.lock = NodeLock(self.workdir, self.name)
        self.clean = clean
        self.port = port
        self.deployer = Deployer(self.workdir, git_allow=settings.git_allow, on_news=self.wake,
                                 as_worker=AsWorker(self.worker_env(), self.runas))
        self.handles: dict[str, Handle] = {}
        self.retiring: list[Handle] = []
        self.spares: dict[str, Spare] = {}  # processor id -> a worker booted ahead of its start
        self.bad_spares: set[tuple] = set()  # keys whose spare died by itself: start those cold
        self.crashes: dict[str, tuple[int, float]] = {}
        self.concurrency: dict[str, int] = {}
        self.stop_event = threading.Event()
        self.stop_at_once = threading.Event()  # asked to stop a second time: kill the workers
        self.say = say
        self.last_beat = float("-inf")  # (time.monotonic) a heartbeat is due at once
        self.supervised_at = float("-inf")  # (time.monotonic) when its workers were last told it is alive
        self.logins_swept = 0.0
        self.namespace = ""  # the network's pub/sub channel prefix, read at start
        self.sizes: dict[str, int] = {}  # processor id -> worker processes its deployments give this node
        self.beat = Beat(settings)  # fires the network's timed sockets while this agent holds the beat
        self.settling = False  # a worker is starting, pausing or resuming: reconcile again soon
        self.tidy_due = True  # look for what deleted processors left (pyfi.agent.leftovers)
        self.database = DatabaseWatch(settings.db, self.name)  # an outage pauses the loop (pyfi.agent.outage)
        self.lost_nodes = LostNodes(settings, self.name)  # what lost agents' workers held moves on

    # -- bootstrap ----------------------------------------------------------------------
    def start(self) -> None:
        """Take the node (:class:`NodeLock`), register its node and agent rows and adopt workers left running."""
        self.lock.acquire()
        if self.clean:
            clean_workdir(self.workdir)
        self.run_root.mkdir(parents=True, exist_ok=True)
        self.worker_home.mkdir(parents=True, exist_ok=True)
        if self.runas is not None:
            self.deployer.clear_builds()
            self.runas.open_dirs(self.workdir, self.run_root)
            self.runas.own(self.worker_home)
            self.runas.check(self.settings, self.workdir)
        with session_scope(self.settings.db) as session:
            node_rows.register(session, self.name, _socket.gethostname(), self.settings.user, self.port, self.workdir,
                               self.row_status)
            self.namespace = network.namespace(session)
            self.sweep_logins(session, {p.id for p in self.desired(session)})
        for handle in adopt(self.run_root):  # newest first: keep one per processor
            if handle.processor_id in self.handles:
                handle.terminate()
                self.retiring.append(handle)
            else:
                self.handles[handle.processor_id] = handle
        self.last_beat = time.monotonic()
        if self.handles:
            log.info("adopted workers for %s", ", ".join(h.processor for h in self.handles.values()))

    def run(self) -> None:
        self.start()
        self.loop()

    def loop(self) -> None:
        """Reconcile and heartbeat until told to stop, then stop every worker (after :meth:`start`).

        While the database is away, each tick waits for the next try (:class:`DatabaseWatch`).
        """
        doorbell = Doorbell(self.settings.pubsub, self.namespace)
        try:
            while not self.stop_event.is_set():
                self.supervise()  # (database or not: its workers must know it is alive)
                if self.database.due():
                    self.database.attempt(self.tick)
                doorbell.wait(FAST_TICK if self.settling else TICK)  # `pyfi proc ...` rings it
        finally:
            doorbell.close()
            self.shutdown()

    def tick(self) -> None:
        """One turn of the loop: converge, fire what is due, heartbeat."""
        if not self.monitor_only:
            self.reconcile_once()
            self.fire_timed()
        self.heartbeat_if_due()

    # -- one step -------------------------------------------------------------------
    def reconcile_once(self) -> None:
        self.settling = False
        with session_scope(self.settings.db) as session:
            wanted = self.desired(session)
            for processor in wanted:
                self.converge(session, processor)
            for processor_id in set(self.handles) - {p.id for p in wanted}:
                self.retire(processor_id)
                self.deployer.forget(processor_id)
            self.deployer.cancel_all_but({p.id for p in wanted})
            self.reap_retired()
            if time.monotonic() - self.logins_swept > SWEEP_LOGINS:
                self.sweep_logins(session, {p.id for p in wanted} | self.processors_running())
                self.tidy_due = True
            self.tidy_if_due(session)
            self.deploy_ahead(wanted)
            self.keep_spares(wanted)
            self.sync_worker_rows(session)

    def processors_running(self) -> set[str]:
        """Processors with a worker of this agent still alive (serving, or finishing its calls)."""
        return set(self.handles) | {h.processor_id for h in self.retiring}

    def sweep_logins(self, session: Session, keep: set[str]) -> None:
        """Drop this node's workers' database logins of processors it does not run any more (PostgreSQL)."""
        self.logins_swept = time.monotonic()
        if session.get_bind().dialect.name == "postgresql":
            for role in worker_logins.sweep(session, self.name, keep):
                log.info("dropped the database login %s of a processor this node no longer runs", role)

    def fire_timed(self) -> None:
        """Fire the timed sockets that are due, if this agent holds the network's beat (pyfi.scheduler.beat)."""
        try:
            self.beat.tick()
        except (PyfiError, OSError, SQLAlchemyError, KombuError) as exc:  # the next tick tries again
            log.warning("timed sockets: %s", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)

    def wake(self) -> None:
        """Reconcile now, not at the next tick: a background deploy succeeded or failed.

        The ring wakes every agent (it is a hint, and rare: code changes).
        """
        ring(self.settings.pubsub, self.name, self.namespace)

    def desired(self, session: Session) -> list[Processor]:
        """What this node should run (pyfi.agent.desired); the worker processes its deployments give each are noted."""
        wanted = desired(session, self.name)
        self.sizes = wanted.sizes
        return wanted.processors

    def pool_of(self, processor: Processor) -> int | None:
        """The pool size to ask of the processor's worker here: ``-po``, else its deployment's (None: its own -w)."""
        return self.pool_size or self.sizes.get(processor.id)

    def converge(self, session: Session, processor: Processor) -> None:
        handle = self.handles.get(processor.id)
        if processor.requested_status in STOPPED_STATES:
            if handle is not None:
                self.retire(processor.id)
            if self.still_serving(processor.id):  # shown stopped once no call sent from now on can run here
                self.settling = True
            else:
                set_status(processor, processor.requested_status, None)
            return
        try:
            deployed = self.deployer.ready(processor)  # None: being deployed in the background
        except DeployError as exc:
            if handle is None or not handle.alive() or self.deployer.failure(processor) is None:
                set_status(processor, ProcessorStatus.ERROR, str(exc))
                return
            deployed = None  # its new code failed to deploy: the worker of the code before keeps serving
        self.converge_running(processor, handle, deployed)

    def converge_running(self, processor: Processor, handle: Handle | None, deployed: Deployed | None) -> None:
        """Start, restart, pause or resume the processor's worker; until its code is deployed, keep the one it has.

        A failed deploy of new code (a followed branch moved) is shown next
        to the status of the worker that keeps serving the code before it.
        """
        if handle is not None and deployed is not None and self.needs_restart(processor, handle, deployed):
            self.retire(processor.id)  # the new worker starts now, the old one finishes its calls
            handle = None
        if handle is not None and not handle.alive():
            self.note_crash(processor, handle)
            handle = None
        if handle is not None and self.restart_if_hung(processor, handle):
            handle = None
        failed = self.deployer.failure(processor)
        if handle is None:
            if deployed is None:
                self.show_deploying(processor, failed)
                return
            handle = self.start_worker(processor, deployed)
            if handle is None:
                return
        paused = processor.requested_status == ProcessorStatus.PAUSED
        handle.set_concurrency(self.sizes.get(processor.id) if not self.pool_size else None)  # resized in place
        handle.set_paused(paused)
        self.concurrency[processor.id] = self.pool_of(processor) or processor.workers
        observed = self.observed_status(handle)
        if observed != (ProcessorStatus.PAUSED if paused else ProcessorStatus.RUNNING):
            self.settling = True
        if observed == ProcessorStatus.STARTING and processor.id in self.crashes:
            return  # keep showing why the last worker died until this one is up
        self.crashes.pop(processor.id, None)
        notes = [f"new code not deployed: {failed}" if failed else None, handle.problems(), self.slow_start(handle, observed),
                 self.hung_note(handle)]
        set_status(processor, observed, "; ".join(n for n in notes if n) or None)

    def slow_start(self, handle: Handle, observed: ProcessorStatus) -> str | None:
        """A worker that is not up long after its start (a broker it cannot reach, say) shows what it last logged."""
        waited = time.time() - handle.started
        if observed != ProcessorStatus.STARTING or waited < SLOW_START:
            return None
        return f"worker not up after {waited:.0f} s: {handle.last_log_line() or 'it logged nothing'}"

    def show_deploying(self, processor: Processor, failed: DeployError | None) -> None:
        """Its first code is being deployed: 'starting', or the error of the last attempt while it is retried."""
        if failed is not None:
            set_status(processor, ProcessorStatus.ERROR, f"{failed} (retrying)")
        elif processor.id not in self.crashes:  # (else keep showing why the last worker died)
            running = self.deployer.deploying_for(processor) or 0.0
            note = f"still deploying after {running // 10 * 10:.0f} s (git or pip)" if running >= SLOW_START else None
            set_status(processor, ProcessorStatus.STARTING, note)

    def needs_restart(self, processor: Processor, handle: Handle, deployed: Deployed) -> bool:
        restart_at = processor.restart_requested
        asked = restart_at is not None and restart_at.replace(tzinfo=dt.timezone.utc).timestamp() > handle.started
        return asked or handle.commit != deployed.sha or handle.signature != spec_of(processor).digest

    def observed_status(self, handle: Handle) -> ProcessorStatus:
        state = {"paused": ProcessorStatus.PAUSED, "running": ProcessorStatus.RUNNING}
        return state.get(handle.reported_state() or "", ProcessorStatus.STARTING)

    def start_worker(self, processor: Processor, deployed: Deployed) -> Handle | None:
        _count, not_before = self.crashes.get(processor.id, (0, 0.0))
        if time.monotonic() < not_before:
            return None
        spare = self.spares.get(processor.id)
        prune(self.run_root, processor.id, spare=spare.run_dir if spare else None)
        paused = processor.requested_status == ProcessorStatus.PAUSED
        try:
            credentials = self.credentials_for(processor)
            handle = self.take_spare(processor, deployed, paused, credentials) or spawn(
                str(deployed.python), processor.id, processor.name, str(deployed.path), deployed.sha,
                spec_of(processor).digest, self.new_run_dir(processor.id), self.name, self.worker_env(), credentials,
                paused=paused, extra_args=self.worker_args, runas=self.runas)
        except PyfiError as exc:  # its login or key could not be made: this processor's problem only
            if database_away(exc):
                raise  # the agent's problem: its loop waits for the database (pyfi.agent.outage)
            delay = self.back_off(processor.id)
            set_status(processor, ProcessorStatus.ERROR, f"cannot start its worker: {exc}; retrying in {delay:.0f} s")
            return None
        except OSError as exc:  # e.g. -u/--user may not run the interpreter: this processor's problem only
            delay = self.back_off(processor.id)
            hint = f"user {self.run_as} needs to read and run {self.workdir}" if self.run_as else "see the agent's log"
            set_status(processor, ProcessorStatus.ERROR, f"cannot start its worker: {exc} ({hint}); retrying in {delay:.0f} s")
            return None
        self.handles[processor.id] = handle
        self.concurrency[processor.id] = self.pool_of(processor) or processor.workers
        log.info("started a worker for %s (pid %d, run directory %s)", processor.name, handle.pid, handle.run_dir)
        return handle

    def new_run_dir(self, processor_id: str) -> Path:
        return self.run_root / f"{processor_id}.{time.time_ns()}"

    def note_crash(self, processor: Processor, handle: Handle) -> None:
        """Its worker died: one that had been serving is restarted at once, one that died starting after a backoff."""
        self.give_back_calls(handle)
        served = handle.reported_state() in ("running", "paused")
        delay = 0.0 if served else self.back_off(processor.id)
        if served:
            self.crashes[processor.id] = (0, 0.0)  # (the next death while starting backs off from 1 s)
        self.handles.pop(processor.id, None)
        reason = handle.start_error() or f"worker exited (code {handle.exit_code()}); see {handle.run_dir}/worker.log"
        log.warning("worker of %s (pid %d) died %s: %s; %s", processor.name, handle.pid,
                    "after serving" if served else "while starting", reason,
                    "restarting it now" if served else f"retrying in {delay:.0f} s")
        set_status(processor, ProcessorStatus.ERROR, f"{reason}; " + ("restarting" if served else f"retrying in {delay:.0f} s"))

    def back_off(self, processor_id: str) -> float:
        """Its worker crashed (or could not start): the seconds until the next try, longer each time."""
        count, _ = self.crashes.get(processor_id, (0, 0.0))
        delay = CRASH_BACKOFF[min(count, len(CRASH_BACKOFF) - 1)]
        self.crashes[processor_id] = (count + 1, time.monotonic() + delay)
        return delay

    def retire(self, processor_id: str) -> None:
        """Stop consuming now; the process finishes its running calls and exits."""
        handle = self.handles.pop(processor_id)
        handle.set_paused(True)
        handle.terminate()
        self.retiring.append(handle)

    def still_serving(self, processor_id: str) -> bool:
        """Whether a retired worker of the processor is still alive (it may still be taking a call)."""
        return any(h.processor_id == processor_id and h.alive() for h in self.retiring)

    def reap_retired(self) -> None:
        gone = [h for h in self.retiring if h.reap()]
        self.retiring = [h for h in self.retiring if h not in gone]
        self.tidy_due = self.tidy_due or bool(gone)
        for handle in gone:
            if handle.killed or handle.exit_code() != 0:  # not a clean stop, which puts everything back itself
                self.give_back_calls(handle)  # (killed after its grace period, or dead before it was retired)

    def give_back_calls(self, handle: Handle) -> None:
        give_back_calls(self.settings, flag_text(self.worker_args, "--celery-config"), handle, self.name)

    def credentials_for(self, processor: Processor) -> Credentials:
        return worker_credentials(self.settings.db, processor.id, self.name)

    def worker_env(self) -> dict[str, str]:
        return worker_env(self.settings, self.worker_home)

    def shutdown(self) -> None:
        """Stop every worker gracefully (or at once, see :meth:`ask_to_stop`), then mark the agent stopped."""
        for processor_id in list(self.handles):
            self.retire(processor_id)
        for spare in self.spares.values():
            spare.discard()
        self.say_what_stopping_waits_for()
        self.deployer.stop()
        self.beat.close()
        self.wait_for_retired()
        if not self.database.attempt(self.mark_stopped):
            log.warning("agent %s stopped while the database is away: `ls agents` shows it lost, not stopped", self.name)
        self.lock.release()


def set_status(processor: Processor, status: ProcessorStatus, error: str | None) -> None:
    """Write status only when it changed (several agents may share a processor)."""
    if processor.status != status or processor.error != error:
        processor.status, processor.error = status, error
