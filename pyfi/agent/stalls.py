"""Workers that hold calls but make no progress: shown as hung, then killed and restarted.

A worker reports how long its oldest call has waited for a free pool
process that does not take it (:mod:`pyfi.worker.progress`). Past
:func:`shown_after` seconds ``ls workers`` shows it as ``hung`` and its
processor's error says so; past the agent's ``--stalled-after`` seconds
(:data:`pyfi.agent.STALLED_AFTER` by default) the agent kills it, its calls go back
to their queues (given back at once on Redis, :mod:`pyfi.agent.giveback`),
and a new worker starts at once. A long call is never taken for a hang: it
keeps its pool process busy.
"""
from __future__ import annotations

import logging

from pyfi.agent.supervisor import Handle
from pyfi.db.models import Processor
from pyfi.enums import ProcessorStatus

log = logging.getLogger("pyfi.agent")

#: seconds after which such a worker shows as hung (or half of --stalled-after, when that is shorter)
SHOWN_HUNG_AFTER = 10.0


def shown_after(stalled_after: float) -> float:
    return min(SHOWN_HUNG_AFTER, stalled_after / 2)


class Stalls:
    """The hung-worker watch of :class:`pyfi.agent.agent.Agent`; the attributes below are the agent's."""

    handles: dict[str, Handle]
    retiring: list[Handle]
    crashes: dict[str, tuple[int, float]]
    stalled_after: float

    def hung(self, handle: Handle) -> bool:
        return handle.stalled() >= shown_after(self.stalled_after)

    def hung_note(self, handle: Handle) -> str | None:
        """The processor's error while its worker is hung, before the agent restarts it."""
        waited = handle.stalled()
        if waited < shown_after(self.stalled_after):
            return None
        return (f"worker hung: a call has waited {waited:.0f} s for a free pool process; "
                f"restarting it at {self.stalled_after:.0f} s")

    def restart_if_hung(self, processor: Processor, handle: Handle) -> bool:
        """Kill a worker hung for ``stalled_after`` seconds; True when it was (a new one starts at once)."""
        waited = handle.stalled()
        if waited < self.stalled_after:
            return False
        log.warning("worker of %s (pid %d) is hung: a call has waited %.0f s for a free pool process; "
                    "killing it, its calls go back to their queues, and starting a new one now",
                    processor.name, handle.pid, waited)
        handle.kill()
        self.handles.pop(processor.id, None)
        self.retiring.append(handle)  # reaped, and its calls given back, once it is gone
        self.crashes[processor.id] = (0, 0.0)  # (keep the error shown until the new worker is up)
        processor.status = ProcessorStatus.ERROR
        processor.error = f"worker hung (a call waited {waited:.0f} s for a free pool process); restarting"
        return True
