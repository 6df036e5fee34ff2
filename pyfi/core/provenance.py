"""Provenance: the calls of one flow and how their results fed each other.

A flow is every call sharing one ``tracking`` id (the first call's id,
inherited by every call a plug or a chained ``task run`` sends). Its edges:

- ``Call.parent``: the call whose result fed this one (a plug's source);
- ``call_parents``: every source of a joined call (a join has several).

A flow is loaded with two indexed queries (calls by tracking, their extra
parents) and assembled in memory, so a flow of thousands of calls draws in
milliseconds. Trees are built iteratively: a deep chain cannot overflow
Python's recursion limit while being assembled.

Joins in trees: a call with several parents is drawn in full, marked
``[join]``, at its first place in the drawing (top to bottom); under each
other parent it appears once more as a leaf marked ``[join, see above]``,
so a graph with joins never repeats a subtree.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from pyfi.core.access import Actor, require
from pyfi.db.models import Call, Socket, call_parents
from pyfi.enums import Right

JOIN, SEEN = " [join]", " [join, see above]"


@dataclass
class Node:
    """One line of a drawn tree."""

    label: str
    call_id: str
    children: list[Node] = field(default_factory=list)


@dataclass
class Flow:
    calls: dict[str, Call]
    children: dict[str, list[str]]
    parents: dict[str, list[str]]

    def ordered(self) -> list[Call]:
        """Every call of the flow, in the order they started (then were created)."""
        return sorted(self.calls.values(), key=_when)

    def roots(self) -> list[Call]:
        """Calls with no parent inside the flow: normally just the first call."""
        return [c for c in self.ordered() if not self.parents.get(c.id)]

    def root_of(self, call: Call) -> Call:
        """Walk first parents up from ``call`` to where its flow began."""
        current, seen = call, {call.id}
        while self.parents.get(current.id):
            up = self.parents[current.id][0]
            if up in seen:  # a corrupt parent cycle must not loop forever
                break
            seen.add(up)
            current = self.calls[up]
        return current


def _when(call: Call) -> tuple:
    return (call.started or call.created, call.created, call.id)


def load_flow(session: Session, call: Call, *, with_sockets: bool = False) -> Flow:
    """``call``'s whole flow with both kinds of edges, in two queries."""
    members = _members(session, call, with_sockets)
    calls = {c.id: c for c in members}
    edges = {(c.parent, c.id) for c in members if c.parent in calls and c.parent != c.id}
    edges |= {(p, c) for c, p in _extra_parents(session, call, list(calls)) if p in calls and p != c}
    children: dict[str, list[str]] = {}
    parents: dict[str, list[str]] = {}
    for parent, child in sorted(edges, key=lambda e: (_when(calls[e[1]]), _when(calls[e[0]]))):
        children.setdefault(parent, []).append(child)
        parents.setdefault(child, []).append(parent)
    return Flow(calls, children, parents)


def _members(session: Session, call: Call, with_sockets: bool) -> list[Call]:
    options = [selectinload(Call.socket).selectinload(Socket.task)] if with_sockets else []
    if call.tracking:
        members = list(session.scalars(select(Call).where(Call.tracking == call.tracking).options(*options)))
        return members if any(m.id == call.id for m in members) else members + [call]
    return _descendants(session, call, options)


def _descendants(session: Session, root: Call, options: list) -> list[Call]:
    """Calls recorded without tracking (older rows): follow ``parent`` down."""
    found, frontier = {root.id: root}, [root.id]
    while frontier:
        children = [c for c in session.scalars(select(Call).where(Call.parent.in_(frontier)).options(*options))
                    if c.id not in found]
        found.update((c.id, c) for c in children)
        frontier = [c.id for c in children]
    return list(found.values())


def _extra_parents(session: Session, call: Call, ids: list[str]) -> list[tuple[str, str]]:
    """``(call, parent)`` rows of ``call_parents`` for the flow's calls."""
    cp = call_parents.c
    if call.tracking:
        query = select(cp.call_id, cp.parent_id).join(Call, Call.id == cp.call_id).where(Call.tracking == call.tracking)
    else:
        query = select(cp.call_id, cp.parent_id).where(cp.call_id.in_(ids))
    return [(row[0], row[1]) for row in session.execute(query)]


def tree_from(flow: Flow, start: Call) -> Node:
    """What ``start``'s result fed, transitively, as a tree of Nodes (see the module docstring)."""
    root = Node("", start.id)
    drawn: set[str] = set()
    stack = [root]
    while stack:  # pre-order is the order lines are printed in: "see above" is decided here
        node = stack.pop()
        seen = node.call_id in drawn
        node.label = _label(flow, node.call_id, seen)
        if seen:
            continue
        drawn.add(node.call_id)
        node.children = [Node("", child) for child in flow.children.get(node.call_id, [])]
        stack.extend(reversed(node.children))
    return root


def _label(flow: Flow, call_id: str, seen: bool) -> str:
    name = flow.calls[call_id].name
    join = len(flow.parents.get(call_id, [])) > 1
    if seen:  # only joins (or a corrupt parent cycle) are reached twice
        return name + (SEEN if join else " [see above]")
    return name + (JOIN if join else "")


def depth(node: Node) -> int:
    deepest, stack = 0, [(node, 1)]
    while stack:
        current, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in current.children)
    return deepest


def walk(node: Node) -> Iterator[Node]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children))


# -- the operations behind `pyfi ls call --tree/--graph/--flow` ----------------------
def forward_tree(session: Session, actor: Actor, call: Call) -> Node:
    """``call`` and the calls its result fed, theirs, and so on."""
    require(session, actor, Right.READ)
    return tree_from(load_flow(session, call), call)


def flow_graph(session: Session, actor: Actor, call: Call) -> list[Node]:
    """The complete graph of ``call``'s flow, drawn from its root (joins included).

    A flow normally has one root; calls whose parent is not in the flow (a
    shell chain started from a call of another flow, say) are extra roots.
    """
    require(session, actor, Right.READ)
    flow = load_flow(session, call)
    main = flow.root_of(call)
    return [tree_from(flow, root) for root in [main] + [r for r in flow.roots() if r.id != main.id]]


def flow_calls(session: Session, actor: Actor, call: Call) -> list[Call]:
    """Every call in ``call``'s flow, in the order they started."""
    require(session, actor, Right.READ)
    return load_flow(session, call, with_sockets=True).ordered()
