"""Decomposition by substation: exact per-substation knapsacks re-pack the allocation and prove a Lagrangian bound."""

from __future__ import annotations

import math
import time

import numpy as np
from scipy.optimize import linear_sum_assignment

from planner.allocation.greedy import State
from planner.allocation.inputs import TOLERANCE, Instance
from planner.allocation.pairs import Pairs

_MAX_UNITS = 20_000
_MAX_CANDIDATES = 400


def repack(state: State, binding: np.ndarray, deadline: float) -> State:
    """Improve ``state`` one substation at a time until a full round gains nothing or time runs out.

    For a binding substation every application placed there is lifted out, and the most
    valuable subset of those and of the unplaced applications that can use one of its
    plots is chosen by an exact 0-1 knapsack over its headroom (weights rounded up, so the
    choice always fits), then matched to its free plots; the change is kept only when it
    raises the objective, so the result is never worse than the input.
    """
    instance, pairs = state.instance, state.pairs
    node_of_pair = instance.power_node[pairs.plot]
    by_node = np.argsort(node_of_pair, kind="stable")
    bounds = np.searchsorted(node_of_pair[by_node], np.arange(len(binding) + 1))
    nodes = np.flatnonzero(binding)
    improved = True
    while improved and time.perf_counter() < deadline:
        improved = False
        for node in nodes:
            if time.perf_counter() >= deadline:
                break
            at_node = by_node[bounds[node] : bounds[node + 1]]
            improved |= _repack_node(state, int(node), at_node, node_of_pair)
    return state


def _repack_node(state: State, node: int, at_node: np.ndarray, node_of_pair: np.ndarray) -> bool:
    """Re-pack one substation from the pairs ``at_node`` (indices of the pairs whose plot it serves)."""
    instance, pairs = state.instance, state.pairs
    placed_here = np.flatnonzero(
        (state.chosen >= 0) & (node_of_pair[np.maximum(state.chosen, 0)] == node)
    )
    # plots usable here: free ones and those held by applications lifted out
    usable_plot = state.holder < 0
    usable_plot[pairs.plot[state.chosen[placed_here]]] = True
    app_of = pairs.app[at_node]
    keep = usable_plot[pairs.plot[at_node]]
    keep &= (state.chosen[app_of] < 0) | np.isin(app_of, placed_here)
    keep &= _water_fits(state, placed_here, at_node)
    candidate_pair = at_node[keep]
    apps = np.unique(pairs.app[candidate_pair])
    if len(apps) <= len(placed_here):
        return False
    best = np.full(len(instance.app_ids), -np.inf)
    np.maximum.at(best, pairs.app[candidate_pair], pairs.value[candidate_pair])
    value = best[apps]
    weight = instance.power[apps]
    keep = shortlist(value, weight, np.isin(apps, placed_here))
    apps, value, weight = apps[keep], value[keep], weight[keep]
    chosen = _knapsack(value, weight, float(instance.power_cap[node]))
    before = float(pairs.value[state.chosen[placed_here]].sum())
    if value[chosen].sum() <= before + TOLERANCE * max(abs(before), 1.0):
        return False
    return _apply(state, node, placed_here, apps[chosen], candidate_pair, before)


def _water_fits(state: State, lifted: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Pairs whose water demand fits the water headroom left once ``lifted`` applications leave."""
    instance, pairs = state.instance, state.pairs
    left = state.water_left.copy()
    for app in lifted:
        plot = pairs.plot[state.chosen[app]]
        if instance.water[app] > 0:
            left[instance.water_node[plot]] += instance.water[app]
    node = instance.water_node[pairs.plot[index]]
    demand = instance.water[pairs.app[index]]
    available = np.where(node >= 0, left[np.maximum(node, 0)], 0.0) if len(left) else 0.0
    return np.asarray((demand == 0) | (available >= demand - TOLERANCE * np.maximum(demand, 1.0)))


def shortlist(value: np.ndarray, weight: np.ndarray, incumbent: np.ndarray) -> np.ndarray:
    """Every incumbent plus the densest others, at most ``_MAX_CANDIDATES`` in all."""
    if len(value) <= _MAX_CANDIDATES:
        return np.ones(len(value), dtype=bool)
    density = value / np.maximum(weight, TOLERANCE)
    order = np.argsort(-density, kind="stable")
    keep = incumbent.copy()
    others = order[~incumbent[order]][: max(_MAX_CANDIDATES - int(incumbent.sum()), 0)]
    keep[others] = True
    return keep


def _knapsack(value: np.ndarray, weight: np.ndarray, capacity: float) -> np.ndarray:
    """Exact 0-1 knapsack by dynamic programming over integer weight units; returns a bool mask.

    Weights are rounded up to whole units, so the chosen items always fit.
    """
    unit = _unit(weight, capacity)
    units = np.ceil(weight / unit - 1e-9).astype(np.int64)
    size = int(math.floor(capacity / unit + 1e-9))
    free = units == 0
    table = np.zeros(size + 1)
    take = np.zeros((len(value), size + 1), dtype=bool)
    for item in np.flatnonzero(~free & (units <= size)):
        w = units[item]
        candidate = table[: size + 1 - w] + value[item]
        better = candidate > table[w:] + 1e-12
        take[item, w:] = better
        table[w:] = np.where(better, candidate, table[w:])
    chosen = free.copy()
    room = size
    for back in range(len(value) - 1, -1, -1):
        if not free[back] and room >= 0 and take[back, room]:
            chosen[back] = True
            room -= int(units[back])
    return np.asarray(chosen)


def _unit(weight: np.ndarray, capacity: float) -> float:
    """Weight unit for the DP: the weights' common divisor when they are whole numbers, else capacity / _MAX_UNITS."""
    positive = weight[weight > 0]
    whole = np.append(positive, capacity)
    if len(positive) and np.all(whole == np.round(whole)) and capacity >= 1:
        divisor = float(np.gcd.reduce(np.round(whole).astype(np.int64)))
        if capacity / divisor <= _MAX_UNITS:
            return divisor
    return max(capacity / _MAX_UNITS, TOLERANCE)


def _apply(
    state: State,
    node: int,
    lifted: np.ndarray,
    entering: np.ndarray,
    candidate_pair: np.ndarray,
    before: float,
) -> bool:
    """Swap ``lifted`` for ``entering`` on the node's plots by a max-value matching; undo unless it gains."""
    pairs = state.pairs
    previous = state.chosen[lifted].copy()
    for app in lifted:
        state.remove(int(app))
    usable = candidate_pair[np.isin(pairs.app[candidate_pair], entering)]
    usable = usable[state.holder[pairs.plot[usable]] < 0]
    after = _match(state, usable)
    if after <= before + TOLERANCE * max(abs(before), 1.0):
        for app in entering:
            if state.chosen[app] >= 0:
                state.remove(int(app))
        for app, pair in zip(lifted, previous):
            state.place(int(app), int(pair))
        return False
    return True


def _match(state: State, usable: np.ndarray) -> float:
    """Place applications on distinct plots by a max-value matching over ``usable`` pairs; returns the value placed."""
    pairs = state.pairs
    if not len(usable):
        return 0.0
    apps, row = np.unique(pairs.app[usable], return_inverse=True)
    plots, col = np.unique(pairs.plot[usable], return_inverse=True)
    gain = np.zeros((len(apps), len(plots)))
    pair_at = np.full(gain.shape, -1, dtype=np.int64)
    # shifted so that placing one more application always beats any value difference
    gain[row, col] = pairs.value[usable] + float(pairs.value[usable].max()) + 1.0
    pair_at[row, col] = usable
    total = 0.0
    for r, c in zip(*linear_sum_assignment(gain, maximize=True)):
        pair = int(pair_at[r, c])
        app = int(apps[r])
        if pair >= 0 and pair in state.options(app):
            state.place(app, pair)
            total += float(pairs.value[pair])
    return total


def knapsack_value(value: np.ndarray, weight: np.ndarray, capacity: float) -> float:
    """An upper bound on the 0-1 knapsack optimum: exact when the weights are whole multiples of a unit.

    Weights are rounded down and the capacity up to whole units, so the DP solves a
    relaxation: its optimum is never below the true one.
    """
    useful = value > 0
    value, weight = value[useful], weight[useful]
    if not len(value):
        return 0.0
    unit = _unit(weight, capacity)
    units = np.floor(weight / unit + 1e-9).astype(np.int64)
    size = int(math.ceil(capacity / unit - 1e-9))
    total = float(value[units == 0].sum())
    table = np.zeros(size + 1)
    for item in np.flatnonzero((units > 0) & (units <= size)):
        w = units[item]
        table[w:] = np.maximum(table[w:], table[: size + 1 - w] + value[item])
    return total + float(table[-1])


def lagrangian_bound(
    instance: Instance,
    pairs: Pairs,
    profit: np.ndarray,
    in_knapsack: np.ndarray,
    deadline: float,
) -> float:
    """Bound from pricing every row but the substations' own: ``sum(max(profit, 0))`` off the knapsacks plus one exact knapsack per substation.

    ``profit`` is the pair's cost less its priced rows (the priced rows' ``upper @ y`` is
    added by the caller); pairs ``in_knapsack`` draw on a binding substation's headroom.
    Within one substation an application counts once (its best pair there) and plots are
    not priced, both relaxations, so the sum bounds every allocation.  Returns inf if the
    deadline passes first.
    """
    total = float(profit[~in_knapsack & (profit > 0)].sum())
    chosen = np.flatnonzero(in_knapsack & (profit > 0))
    node = instance.power_node[pairs.plot[chosen]]
    order = np.lexsort((pairs.app[chosen], node))
    chosen, node = chosen[order], node[order]
    starts = np.flatnonzero(np.r_[True, node[1:] != node[:-1]]) if len(node) else np.empty(0, int)
    for start, end in zip(starts, np.r_[starts[1:], len(node)].astype(int)):
        if time.perf_counter() >= deadline:
            return math.inf
        here = chosen[start:end]
        best = np.full(len(instance.app_ids), 0.0)
        np.maximum.at(best, pairs.app[here], profit[here])
        apps = np.unique(pairs.app[here])
        total += knapsack_value(
            best[apps], instance.power[apps], float(instance.power_cap[node[start]])
        )
    return total
