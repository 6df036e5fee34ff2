"""Placement by strategy: BALANCED spreads, EFFICIENT packs, and nothing moves that need not."""
from __future__ import annotations

from pyfi.enums import Strategy
from pyfi.scheduler.placement import NodeRoom, place

TWO = [NodeRoom("a", 2), NodeRoom("b", 2)]


def test_balanced_spreads_each_processors_workers_evenly():
    placed = place(Strategy.BALANCED, {"p": 2, "q": 3, "r": 1}, TWO, {})
    assert placed["p"] == {"a": 1, "b": 1}
    assert sorted(placed["q"].values()) == [1, 2]
    assert sum(placed["r"].values()) == 1


def test_balanced_puts_the_odd_worker_where_it_runs_already():
    assert place(Strategy.BALANCED, {"p": 1}, TWO, {"p": {"b": 1}}) == {"p": {"b": 1}}
    assert place(Strategy.BALANCED, {"p": 3}, TWO, {"p": {"b": 2, "a": 1}}) == {"p": {"b": 2, "a": 1}}


def test_balanced_moves_a_lost_nodes_share_and_takes_it_back_when_the_node_returns():
    alone = place(Strategy.BALANCED, {"p": 2}, [NodeRoom("a", 2)], {"p": {"a": 1, "b": 1}})
    assert alone == {"p": {"a": 2}}
    assert place(Strategy.BALANCED, {"p": 2}, TWO, alone) == {"p": {"a": 1, "b": 1}}


def test_efficient_packs_onto_as_few_nodes_as_capacity_allows():
    placed = place(Strategy.EFFICIENT, {"p": 2, "q": 2}, [NodeRoom("a", 4), NodeRoom("b", 4)], {})
    assert placed == {"p": {"a": 2}, "q": {"a": 2}}
    big = place(Strategy.EFFICIENT, {"p": 5}, [NodeRoom("a", 4), NodeRoom("b", 2)], {})
    assert big == {"p": {"a": 4, "b": 1}}


def test_efficient_keeps_what_fits_and_overcommits_rather_than_placing_nothing():
    assert place(Strategy.EFFICIENT, {"p": 2}, [NodeRoom("a", 4), NodeRoom("b", 4)], {"p": {"b": 2}}) == {"p": {"b": 2}}
    assert place(Strategy.EFFICIENT, {"p": 3}, [NodeRoom("a", 1)], {}) == {"p": {"a": 3}}


def test_no_live_node_places_nothing():
    assert place(Strategy.BALANCED, {"p": 2}, [], {"p": {"a": 2}}) == {"p": {}}
