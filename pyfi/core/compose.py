"""Building a network file: every object made to match, in one transaction.

``build`` runs ``pyfi.core.desired.ensure`` for each object of a loaded
``Network`` (queues, processors, sockets, then plugs, so references resolve)
inside the caller's session. The caller commits, or rolls back for a dry
run: a dry run is the real build undone, so it checks exactly what a build
would (rights, references, values) and reports the same plan. Any error is
re-raised with the file and line of the object or field at fault; the
caller's rollback leaves the database as it was.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy.orm import Session

from pyfi.core.access import Actor
from pyfi.core.desired import SCHEMA, Action, Change, check_refs, ensure
from pyfi.core.netfile import Item, Network, located
from pyfi.errors import PyfiError


@dataclass(frozen=True)
class Plan:
    path: str
    changes: list[Change]

    @property
    def counts(self) -> Counter:
        return Counter(c.action for c in self.changes)

    @property
    def changed(self) -> bool:
        return any(c.action != Action.UNCHANGED for c in self.changes)

    def summary(self, dry_run: bool) -> str:
        counts = self.counts
        total = len(self.changes)
        if not self.changed:
            return f"{self.path}: no changes ({total} objects unchanged)"
        created, updated, same = counts[Action.CREATE], counts[Action.UPDATE], counts[Action.UNCHANGED]
        if dry_run:
            return (f"{self.path}: dry run, nothing changed; a build would create {created}, update {updated}, "
                    f"leave {same} unchanged")
        return f"{self.path}: {created} created, {updated} updated, {same} unchanged"


def build(session: Session, actor: Actor, network: Network) -> Plan:
    """Make the database match ``network``; the caller commits or rolls back."""
    changes = [_ensure_item(session, actor, network.path, item) for item in network.items]
    return Plan(network.path, changes)


def _ensure_item(session: Session, actor: Actor, path: str, item: Item) -> Change:
    what = f"{item.kind} {item.name!r}"
    _check_item_refs(session, path, item, what)
    try:
        return ensure(session, actor, item.kind, item.name, item.fields)
    except PyfiError as exc:
        raise located(exc, path, item.line, what) from exc


def _check_item_refs(session: Session, path: str, item: Item, what: str) -> None:
    """References checked one by one, so an unknown name is reported on its own line."""
    for key, value in item.fields.items():
        if SCHEMA[item.kind][key].ref is None:
            continue
        try:
            check_refs(session, item.kind, {key: value})
        except PyfiError as exc:
            ref = SCHEMA[item.kind][key].ref
            where = f"under {ref}s:" if ref != "socket" else "under a processor's sockets:"
            sep = " " if (exc.hint or "").endswith("?") else "; "
            exc.hint = f"{exc.hint}{sep}or define it {where} in the file"
            raise located(exc, path, item.line_of(key), what) from exc
