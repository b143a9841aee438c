"""Feasible allocations built greedily: first come first served, value density with swaps, plain matching."""

from __future__ import annotations

import time

import numpy as np
from scipy.optimize import linear_sum_assignment

from planner.allocation.inputs import TOLERANCE, Instance
from planner.allocation.pairs import Pairs, fits_headroom


class State:
    """A feasible partial allocation with the headroom it leaves."""

    def __init__(self, instance: Instance, pairs: Pairs) -> None:
        self.instance = instance
        self.pairs = pairs
        self.chosen = np.full(len(instance.app_ids), -1, dtype=np.int64)
        self.holder = np.full(len(instance.plot_ids), -1, dtype=np.int64)
        self.power_left = instance.power_cap.copy()
        self.water_left = instance.water_cap.copy()

    def options(self, app: int) -> np.ndarray:
        """Indices of the application's pairs whose plot is free and whose nodes still have headroom."""
        index = np.arange(self.pairs.start[app], self.pairs.end[app])
        plot = self.pairs.plot[index]
        free = self.holder[plot] < 0
        free &= fits_headroom(
            np.full(len(index), self.instance.power[app]),
            self.power_left,
            self.instance.power_node[plot],
        )
        free &= fits_headroom(
            np.full(len(index), self.instance.water[app]),
            self.water_left,
            self.instance.water_node[plot],
        )
        return np.asarray(index[free])

    def place(self, app: int, pair: int) -> None:
        plot = self.pairs.plot[pair]
        self.chosen[app] = pair
        self.holder[plot] = app
        self._consume(app, plot, 1.0)

    def remove(self, app: int) -> None:
        plot = self.pairs.plot[self.chosen[app]]
        self.chosen[app] = -1
        self.holder[plot] = -1
        self._consume(app, plot, -1.0)

    def _consume(self, app: int, plot: int, sign: float) -> None:
        if self.instance.power[app] > 0:
            self.power_left[self.instance.power_node[plot]] -= sign * self.instance.power[app]
        if self.instance.water[app] > 0:
            self.water_left[self.instance.water_node[plot]] -= sign * self.instance.water[app]

    def objective(self) -> float:
        placed = self.chosen[self.chosen >= 0]
        return float(self.pairs.value[placed].sum())

    def prefer_small_plots(self) -> None:
        """Among equally valuable plots on the same nodes, move each application to the smallest free one."""
        for app in np.flatnonzero(self.chosen >= 0):
            current = self.chosen[app]
            index = np.arange(self.pairs.start[app], current)
            plot = self.pairs.plot[index]
            here = self.pairs.plot[current]
            same = (self.instance.power_node[plot] == self.instance.power_node[here]) & (
                self.instance.water_node[plot] == self.instance.water_node[here]
            )
            better = index[
                same
                & (self.holder[plot] < 0)
                & (self.pairs.value[index] >= self.pairs.value[current] - TOLERANCE)
            ]
            if len(better):
                self.remove(int(app))
                self.place(int(app), int(better[0]))

    def fill(self, apps: np.ndarray) -> None:
        """Give each listed unallocated application its best still-feasible pair (first best = smallest plot)."""
        for app in apps:
            if self.chosen[app] < 0:
                options = self.options(app)
                if len(options):
                    self.place(app, options[np.argmax(self.pairs.value[options])])


def first_come(instance: Instance, pairs: Pairs) -> State:
    """The operator's practice: applications in input order each take the smallest feasible plot."""
    state = State(instance, pairs)
    for app in range(len(instance.app_ids)):
        options = state.options(app)
        if len(options):
            state.place(app, options[0])
    return state


def best_values(instance: Instance, pairs: Pairs) -> np.ndarray:
    best = np.full(len(instance.app_ids), -np.inf)
    np.maximum.at(best, pairs.app, pairs.value)
    return best


def _value_density_order(instance: Instance, pairs: Pairs) -> np.ndarray:
    """Applications by value per share of the scarcest headroom they consume, best first."""
    best = best_values(instance, pairs)
    typical_power = (
        np.median(instance.power_cap[instance.power_cap > 0])
        if (instance.power_cap > 0).any()
        else 1.0
    )
    typical_water = (
        np.median(instance.water_cap[instance.water_cap > 0])
        if (instance.water_cap > 0).any()
        else 1.0
    )
    footprint = instance.power / typical_power + instance.water / typical_water + 1e-3
    return np.argsort(-best / footprint, kind="stable")


def value_density_search(instance: Instance, pairs: Pairs, deadline: float) -> State:
    """Greedy by value density, then swap-based local search until no move gains or time runs out."""
    state = State(instance, pairs)
    order = _value_density_order(instance, pairs)
    order = order[pairs.end[order] > pairs.start[order]]
    state.fill(order)
    improved = True
    while improved and time.perf_counter() < deadline:
        improved = False
        for app in order:
            if time.perf_counter() >= deadline:
                break
            if state.chosen[app] < 0 and _swap_in(state, app):
                improved = True
    return state


def _swap_in(state: State, app: int) -> bool:
    """Place ``app`` by evicting one less valuable application, then re-place the evicted one if possible."""
    move = _best_eviction(state, app)
    if move is None:
        return False
    pair, victim = move
    state.remove(victim)
    state.place(app, pair)
    state.fill(np.array([victim]))
    return True


def _best_eviction(state: State, app: int) -> tuple[int, int] | None:
    """Most valuable (pair, victim) such that removing the victim alone lets ``app`` take the pair's plot."""
    pairs, instance = state.pairs, state.instance
    index = np.arange(pairs.start[app], pairs.end[app])
    holder = state.holder[pairs.plot[index]]
    held_apps = np.flatnonzero(state.chosen >= 0)
    held_value = pairs.value[state.chosen[held_apps]]
    held_node = instance.power_node[pairs.plot[state.chosen[held_apps]]]
    moves: list[tuple[float, int, int]] = []
    taken = holder >= 0
    for pair, victim in zip(index[taken], holder[taken]):
        moves.append(
            (pairs.value[pair] - pairs.value[state.chosen[victim]], int(pair), int(victim))
        )
    free = index[~taken]
    if instance.power[app] > 0 and len(free):
        # among free plots only the node matters for eviction, so keep the best plot per node pair
        nodes = (
            instance.power_node[pairs.plot[free]] * (len(instance.node_names) + 1)
            + instance.water_node[pairs.plot[free]]
        )
        by_value = np.argsort(-pairs.value[free], kind="stable")
        _, first = np.unique(nodes[by_value], return_index=True)
        for pair in free[by_value][first]:
            at_node = held_node == instance.power_node[pairs.plot[pair]]
            for victim, value in zip(held_apps[at_node], held_value[at_node]):
                moves.append((pairs.value[pair] - value, int(pair), int(victim)))
    for gain, pair, victim in sorted(moves, reverse=True):
        if gain <= TOLERANCE:
            break
        if _fits_after_removal(
            instance,
            state,
            app,
            int(pairs.plot[pair]),
            victim,
            int(pairs.plot[state.chosen[victim]]),
        ):
            return pair, victim
    return None


def _fits_after_removal(
    instance: Instance, state: State, app: int, plot: int, victim: int, victim_plot: int
) -> bool:
    for demand, left, node_of in (
        (instance.power, state.power_left, instance.power_node),
        (instance.water, state.water_left, instance.water_node),
    ):
        if demand[app] == 0:
            continue
        node = node_of[plot]
        freed = demand[victim] if node_of[victim_plot] == node else 0.0
        if left[node] + freed < demand[app] - TOLERANCE * max(demand[app], 1.0):
            return False
    return True


def assignment(instance: Instance, pairs: Pairs) -> State:
    """Exact max-value matching when no headroom can bind (linear_sum_assignment on the compatible pairs)."""
    state = State(instance, pairs)
    if not len(pairs.app):
        return state
    apps, app_row = np.unique(pairs.app, return_inverse=True)
    plots, plot_col = np.unique(pairs.plot, return_inverse=True)
    # values are non-negative, so a zero for incompatible cells is no better than leaving the application out
    gain = np.zeros((len(apps), len(plots)))
    gain[app_row, plot_col] = pairs.value
    pair_at = np.full(gain.shape, -1, dtype=np.int64)
    pair_at[app_row, plot_col] = np.arange(len(pairs.app))
    rows, cols = linear_sum_assignment(gain, maximize=True)
    for row, col in zip(rows, cols):
        if pair_at[row, col] >= 0:
            state.place(int(apps[row]), int(pair_at[row, col]))
    state.fill(apps)
    return state
