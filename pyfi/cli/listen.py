"""``pyfi listen``: sniff the lifecycle and log messages of processors."""
from __future__ import annotations

import importlib
import json
import os
import sys
import threading
from typing import Any

import click

from pyfi.cli.context import AppContext, pass_app
from pyfi.cli.options import POSITIVE_SECONDS
from pyfi.errors import InvalidInput


@click.command()
@click.option("-n", "--name", required=True, help="Name of processor room, e.g. pyfi.queue1.proc1 (globs allowed)")
@click.option("-c", "--channel", required=True, help="Listen channel (e.g. task, log, etc)")
@click.option("-a", "--adaptor",
              help="Adaptor class (e.g. my.module.Class, found in the current directory or on PYTHONPATH); "
                   "each message goes to its put(message)")
@click.option("--format", "fmt", type=click.Choice(["dict", "json"]), default="dict", show_default=True,
              help="dict: one Python dict per message, as the original pyfi documentation shows them; "
                   "json: one decoded JSON message per line")
@click.option("--timeout", type=POSITIVE_SECONDS, help="Stop after this many seconds without a message (more than 0)")
@pass_app
def listen(app: AppContext, name: str, channel: str, adaptor: str | None, fmt: str, timeout: float | None) -> None:
    """Listen to a processor output (needs the right READ; shows only messages its processors' workers signed)"""
    from pyfi.core.listening import Verifier, open_listening, unsigned_warning
    from pyfi.messaging.pubsub import pattern_for, subscriber_for

    check_channel(channel)
    sink = load_adaptor(adaptor) if adaptor else None
    with app.session() as session:
        namespace = open_listening(session, app.actor)
    verifier = Verifier(app.db_url, namespace, lambda where, why: click.echo(unsigned_warning(where, why), err=True))
    feed = pending_feed(app, name, channel, fmt, sink)
    with subscriber_for(app.settings.pubsub, pattern_for(name, channel), namespace) as subscriber:
        warn_if_no_room(app, name)  # subscribed first: nothing published meanwhile is missed
        if fmt == "dict":
            click.echo(f"Listening to {name}")
        feed.start()
        try:
            for received in subscriber.listen(timeout=timeout):
                for message in verifier.messages(received):
                    with DELIVERING:
                        deliver(message, fmt, sink)
        except KeyboardInterrupt:
            return
        finally:
            feed.stopped.set()


#: one message printed (or put to the adaptor) at a time: the pending feed runs in a thread of its own
DELIVERING = threading.Lock()
#: seconds between two reads of new pending calls
PENDING_POLL = 1.0


class Feed(threading.Thread):
    """Shows the calls recorded as pending (:class:`pyfi.core.listening.PendingFeed`) until stopped."""

    def __init__(self, source: Any, fmt: str, sink: Any) -> None:
        super().__init__(daemon=True, name="pyfi-pending")
        self.source, self.fmt, self.sink = source, fmt, sink
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(PENDING_POLL):
            try:
                messages = self.source.read()
            except Exception:  # noqa: BLE001 - the database is away: what workers publish still shows
                continue
            for message in messages:
                with DELIVERING:
                    deliver(message, self.fmt, self.sink)


def pending_feed(app: AppContext, name: str, channel: str, fmt: str, sink: Any) -> Feed:
    from pyfi.core.listening import PendingFeed

    return Feed(PendingFeed(app.db_url, name, channel), fmt, sink)


def check_channel(channel: str) -> None:
    """A channel workers publish on, or a glob: a misspelt one would listen, silently, to nothing."""
    from pyfi.messaging.pubsub import Channel

    if channel not in {c.value for c in Channel} and not any(ch in channel for ch in "*?["):
        known = ", ".join(c.value for c in Channel)
        raise InvalidInput(f"no processor publishes on channel {channel!r}", f"use one of {known}, or a glob such as '*'")


def warn_if_no_room(app: AppContext, name: str) -> None:
    """Say so when NAME matches no room yet: a processor name without its queue would listen to nothing.

    Only a warning: the processor may be added after the listener starts.
    Without the right to list sockets, nothing is said.
    """
    from fnmatch import fnmatchcase

    from pyfi.core.processors import rooms
    from pyfi.errors import PyfiError

    try:
        with app.session() as session:
            known = rooms(session, app.actor)
    except PyfiError:
        return
    if any(fnmatchcase(room, name) for room in known):
        return
    near = [room for room in known if room.endswith(f".{name}")]
    example = f"{near[0]!r}" if near else "'pyfi.queue1.proc1'"
    click.echo(f"Warning: no processor's room matches {name!r} yet; a room is <queue>.<processor>, "
               f"e.g. {example}. Listening anyway.", err=True)


def deliver(message: Any, fmt: str, sink: Any) -> None:
    if sink is not None:
        sink.put(message.data)
    elif fmt == "json":
        click.echo(json.dumps(message.data), nl=True)
    else:
        shown = message.as_dict()
        shown["data"] = json.dumps(shown["data"])
        click.echo(str(shown))


def load_adaptor(path: str) -> Any:
    """Instantiate ``module.Class`` (the user's own code, named on their command line)."""
    module_name, _, attr = path.rpartition(".")
    if not module_name:
        raise InvalidInput(f"invalid adaptor {path!r}", "give module.Class, e.g. myapp.sinks.Printer")
    if os.getcwd() not in sys.path and "" not in sys.path:
        # `python -m pyfi.cli` finds a module in the current directory, the `pyfi` script would not: same for both
        sys.path.insert(0, os.getcwd())
    try:
        target = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise InvalidInput(f"cannot load adaptor {path!r}: {exc}",
                           "check the module is in the current directory or on PYTHONPATH") from exc
    instance = target() if isinstance(target, type) else target
    if not callable(getattr(instance, "put", None)):
        raise InvalidInput(f"adaptor {path!r} has no put(message) method", "define put(self, message)")
    return instance
