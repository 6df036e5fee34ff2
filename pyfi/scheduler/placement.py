"""Where a scheduler's processors run: how many worker processes on which node, by strategy.

A pure function of what the scheduler sees (the processors it places with
the workers each wants, its live nodes with their CPUs, where things run
now), so that it can be reasoned about and tested without a network:

- **BALANCED** spreads each processor's workers evenly over the live
  nodes: with 2 workers and 2 nodes, one on each; with 3, two and one. The
  node that gets one more is the one that already runs more of it (nothing
  moves that need not), then the least loaded.
- **EFFICIENT** packs each processor onto as few nodes as their CPUs
  allow, the fullest that still has room first; a placement that still fits
  stays where it is. More workers than the nodes have CPUs go where most
  room is left (over capacity rather than not at all). Processors placed
  already are placed first, so that a new one does not push them away.

A placement is ``{node name: worker processes}``; a processor with no live
node has none.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Mapping

from pyfi.enums import Strategy

Placement = dict[str, int]


@dataclass(frozen=True)
class NodeRoom:
    """A live node a scheduler may place on, and how many CPUs it has."""

    name: str
    cpus: int


def place(strategy: Strategy, wanted: Mapping[str, int], nodes: list[NodeRoom],
          current: Mapping[str, Placement]) -> dict[str, Placement]:
    """The placement of every processor in ``wanted`` (processor -> workers), given where they run now."""
    if not nodes:
        return {processor: {} for processor in wanted}
    load: Counter[str] = Counter()
    placed: dict[str, Placement] = {}
    placed_before = {p for p, where in current.items() if any(where.values())}
    # what runs somewhere keeps its room first, then the biggest: they need the most room
    for processor in sorted(wanted, key=lambda p: (p not in placed_before, -wanted[p], p)):
        now = {node: n for node, n in current.get(processor, {}).items() if n > 0}
        if strategy == Strategy.EFFICIENT:
            placed[processor] = _packed(wanted[processor], nodes, now, load)
        else:
            placed[processor] = _balanced(wanted[processor], nodes, now, load)
        load.update(placed[processor])
    return placed


def _balanced(workers: int, nodes: list[NodeRoom], now: Placement, load: Counter[str]) -> Placement:
    share, extra = divmod(workers, len(nodes))
    order = sorted(nodes, key=lambda n: (-now.get(n.name, 0), load[n.name], n.name))
    placement = {node.name: share + (1 if rank < extra else 0) for rank, node in enumerate(order)}
    return {node: n for node, n in placement.items() if n > 0}


def _packed(workers: int, nodes: list[NodeRoom], now: Placement, load: Counter[str]) -> Placement:
    room = {node.name: node.cpus - load[node.name] for node in nodes}
    if now and sum(now.values()) == workers and all(node in room and n <= room[node] for node, n in now.items()):
        return dict(now)  # it still fits where it is
    placement: Placement = {}
    left = workers
    for node in sorted(nodes, key=lambda n: (-min(room[n.name], left), -load[n.name], n.name)):
        take = min(max(room[node.name], 0), left)
        if take:
            placement[node.name] = take
            left -= take
        if not left:
            return placement
    fullest = max(nodes, key=lambda n: (room[n.name] - placement.get(n.name, 0), -load[n.name], n.name)).name
    placement[fullest] = placement.get(fullest, 0) + left  # over capacity: the node with the most room left
    return placement
