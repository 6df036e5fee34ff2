"""How an agent stops: its workers finish their running calls, or, asked a second time, are killed at once.

A stopping agent says what it waits for. A second Ctrl-C or SIGTERM kills
the workers (their process groups); the calls they were running go back to
their queues as after any killed worker: on Redis the agent gives them back
(:mod:`pyfi.agent.giveback`), the embedded broker and RabbitMQ by themselves.
This is a part of :class:`pyfi.agent.agent.Agent`.
"""
from __future__ import annotations

import threading
import time
from typing import Callable

from pyfi.agent.supervisor import STOP_GRACE, Handle

KILLED_GONE_WITHIN = 5.0  # seconds a stopping agent waits, past the workers' stop grace, for killed ones to be gone
PAUSE = 0.1  # seconds between looks at the stopping workers


def _count(number: int, word: str) -> str:
    return f"{number} {word}{'' if number == 1 else 's'}"


class Stopping:
    """The agent's stop; the attributes below are the agent's."""

    stop_event: threading.Event
    stop_at_once: threading.Event
    retiring: list[Handle]
    say: Callable[[str], None]

    def reap_retired(self) -> None:
        raise NotImplementedError

    def ask_to_stop(self) -> None:
        """Stop (the workers finish their running calls); asked again, stop at once (``agent start``'s signals)."""
        if self.stop_event.is_set():
            self.stop_at_once.set()
        self.stop_event.set()

    def say_what_stopping_waits_for(self) -> None:
        running = [h for h in self.retiring if h.alive()]
        if running and not self.stop_at_once.is_set():
            self.say(f"stopping: waiting up to {STOP_GRACE:.0f} s for {_count(len(running), 'worker')} to finish "
                     f"their running calls (Ctrl-C again to stop at once)")

    def wait_for_retired(self) -> None:
        """Until every stopping worker is gone: killed after its grace, or at once when asked again."""
        deadline = time.monotonic() + STOP_GRACE + KILLED_GONE_WITHIN
        killed = False
        while self.retiring and time.monotonic() < deadline:
            if self.stop_at_once.is_set() and not killed:
                self.kill_retiring()
                killed = True
            self.reap_retired()
            if killed:
                time.sleep(PAUSE / 5)
            else:
                self.stop_at_once.wait(PAUSE)

    def kill_retiring(self) -> None:
        alive = [h for h in self.retiring if h.alive()]
        for handle in alive:
            handle.kill()
        if alive:
            self.say(f"stopping at once: killed {_count(len(alive), 'worker')}; "
                     f"the calls they were running go back to their queues")
