"""Spares: workers booted ahead of need, so that a processor's start or restart takes no boot time.

A worker takes about a second of CPU to import Celery and the processor's
module. The agent keeps up to ``max_spares`` booted workers, each waiting
(not consuming) for the processor it was booted for; a start or restart
hands the spare its queues. Stopped processors' code is deployed ahead for
the same reason. This is a part of :class:`pyfi.agent.agent.Agent`.
"""
from __future__ import annotations

import logging
from pathlib import Path

from pyfi.agent.deploy import Deployed, Deployer
from pyfi.agent.supervisor import Handle, Spare, spawn_spare
from pyfi.db.models import Processor
from pyfi.enums import ProcessorStatus
from pyfi.errors import DeployError
from pyfi.worker.credentials import Credentials
from pyfi.worker.spec import spec_of

log = logging.getLogger("pyfi.agent")


def spare_key(processor: Processor, deployed: Deployed) -> tuple:
    """What a spare's command line depends on (``Spare.key``)."""
    return (processor.name, str(deployed.python), str(deployed.path))


class SpareKeeping:
    """The agent's spares; the attributes below are the agent's."""

    name: str
    deployer: Deployer
    settling: bool
    max_spares: int
    spares: dict[str, Spare]
    bad_spares: set[tuple]
    crashes: dict[str, tuple[int, float]]
    worker_args: tuple[str, ...]
    run_as: str | None

    def new_run_dir(self, processor_id: str) -> Path:
        raise NotImplementedError

    def worker_env(self) -> dict[str, str]:
        raise NotImplementedError

    def deploy_ahead(self, wanted: list[Processor]) -> None:
        """Deploy a stopped processor's code before it is started, so that it can have a spare.

        One at a time, while nothing else is being deployed or started, for
        at most as many processors as there are spares; once per setting of
        their code (no head checks, no retries: a failure is shown, and
        retried, when the processor is started).
        """
        if self.settling or self.deployer.busy():
            return
        stopped = sorted((p for p in wanted if p.requested_status == ProcessorStatus.STOPPED), key=lambda p: p.name)
        for processor in stopped[:self.max_spares]:
            if self.deployer.failure(processor) is not None:
                continue
            try:
                self.deployer.ready(processor, follow=False)
            except DeployError:
                continue
            if self.deployer.busy():
                return

    def take_spare(self, processor: Processor, deployed: Deployed, paused: bool, credentials: Credentials) -> Handle | None:
        spare = self.spares.pop(processor.id, None)
        if spare is None:
            return None
        if spare.key != spare_key(processor, deployed):
            spare.discard()
            return None
        return spare.take(processor.id, deployed.sha, spec_of(processor).digest, paused, credentials)

    def keep_spares(self, wanted: list[Processor]) -> None:
        """A spare for each of up to ``max_spares`` deployed processors, kept for its next start or restart.

        A spare boots only while no worker is starting and no other spare is
        booting: it costs a second of CPU, which a start in progress needs more.
        """
        keys = self.spare_keys(wanted)
        for processor_id, spare in list(self.spares.items()):
            dead = not spare.alive()
            if dead:
                self.bad_spares.add(spare.key)  # it died by itself: that code starts cold from now on
            if dead or keys.get(processor_id) != spare.key:
                self.spares.pop(processor_id).discard()
        if self.settling or any(not s.ready() for s in self.spares.values()):
            return
        for processor_id, key in keys.items():  # the most wanted first
            if processor_id not in self.spares:
                name, python, checkout = key
                try:
                    self.spares[processor_id] = spawn_spare(python, name, checkout, self.new_run_dir(processor_id),
                                                            self.name, self.worker_env(), extra_args=self.worker_args,
                                                            runas=self.runas)
                except OSError as exc:  # the start will say so, as the processor's error
                    log.warning("cannot boot a spare for %s: %s", name, exc)
                    self.bad_spares.add(key)
                return

    def spare_keys(self, wanted: list[Processor]) -> dict[str, tuple]:
        """Processor id -> spare key, for the processors that should have a spare, the most wanted first.

        Stopped processors come first (a start is the likeliest next request),
        then the others, each by name; a key whose spare died by itself is left out.
        """
        deployed = {p.id: self.deployer.current(p) for p in wanted if p.requested_status != ProcessorStatus.REMOVED}
        candidates = sorted((p for p in wanted if deployed.get(p.id) is not None),
                            key=lambda p: (p.requested_status != ProcessorStatus.STOPPED, p.name))
        keys = {p.id: spare_key(p, deployed[p.id]) for p in candidates if p.id not in self.crashes}  # (see note_crash)
        usable = [pid for pid, key in keys.items() if key not in self.bad_spares]
        return {pid: keys[pid] for pid in usable[:self.max_spares]}
