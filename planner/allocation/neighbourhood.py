"""Search on the column model: greedy, bound, per-substation re-packing, then a few substations at once by HiGHS."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from planner.allocation.aggregate import (
    Columns,
    Placement,
    binding_nodes,
    greedy,
    lagrangian_bound,
    match_columns,
    repack,
)
from planner.allocation.catalogue import Catalogue
from planner.allocation.inputs import TOLERANCE, sorted_unique
from planner.allocation.milp import pass_model, relative_gap
from planner.allocation.pairs import pair_values
from planner.highs import silent_highs

_NODES_AT_ONCE = 3
_CANDIDATES = 250
_SECONDS_PER_MIP = 2.0
# a neighbourhood with at most this many (application, plot) pairs is solved on the pairs: exact
_PAIR_MIP_LIMIT = 3000
# neighbourhoods in a row without a gain after which the search gives up before its deadline
_STALL = 200


def search(
    placement: Placement,
    binding: np.ndarray,
    deadline: float,
    price: np.ndarray,
    done: Callable[[], bool],
    on_gain: Callable[[], None],
) -> None:
    """Lift every application off a few substations and re-place the best of them and the unplaced ones.

    The substations are drawn at random (a seeded generator, so runs repeat), each with a
    chance proportional to what it loses against the bound at the substation ``price``:
    headroom left unused plus applications worth less than the headroom they take; each neighbourhood is a small MILP over
    (application, group) columns whose answer is matched to real plots and kept only
    when it raises the objective.  Stops at the deadline or when ``done()``.
    """
    cols = placement.cols
    # every substation with a column can be drawn: a non-binding one has little to lose, so rarely is
    node_of_column = placement.catalogue.group_power[cols.group]
    nodes = sorted_unique(node_of_column[node_of_column >= 0])
    if not len(nodes):
        return
    by_node = np.argsort(node_of_column, kind="stable")
    bounds = np.searchsorted(node_of_column[by_node], np.arange(len(binding) + 1))
    rng = np.random.default_rng(0)
    size = min(_NODES_AT_ONCE, len(nodes))
    # with no more substations than one neighbourhood holds, every draw is the same
    stall = 0
    limit = 1 if size == len(nodes) else _STALL
    while time.perf_counter() < deadline and not done() and stall < limit:
        weights = np.maximum(_losses(placement, price)[nodes], 1e-9)
        chosen = np.sort(rng.choice(nodes, size=size, replace=False, p=weights / weights.sum()))
        at = np.concatenate([by_node[bounds[n] : bounds[n + 1]] for n in chosen])
        stall += 1
        if _solve(placement, chosen, at, deadline):
            stall = 0
            on_gain()


def _losses(placement: Placement, price: np.ndarray) -> np.ndarray:
    """Per substation: priced headroom left plus the priced headroom its applications take beyond their value."""
    instance = placement.catalogue.instance
    placed = np.flatnonzero(placement.plot_of >= 0)
    node = instance.power_node[placement.plot_of[placed]]
    at_node = (node >= 0) & (instance.power[placed] > 0)
    excess = (
        price[node[at_node]] * instance.power[placed[at_node]] - placement.worth[placed[at_node]]
    )
    loss = np.maximum(price, 0.0) * np.maximum(placement.power_left, 0.0)
    return np.asarray(
        loss + np.bincount(node[at_node], weights=np.maximum(excess, 0.0), minlength=len(loss))
    )


def _solve(placement: Placement, nodes: np.ndarray, at: np.ndarray, deadline: float) -> bool:
    catalogue, cols = placement.catalogue, placement.cols
    instance = catalogue.instance
    placed = np.flatnonzero(placement.plot_of >= 0)
    lifted = placed[np.isin(instance.power_node[placement.plot_of[placed]], nodes)]
    is_lifted = np.zeros(len(instance.app_ids), dtype=bool)
    is_lifted[lifted] = True
    app_of = cols.app[at]
    at = at[(placement.plot_of[app_of] < 0) | is_lifted[app_of]]
    outside = np.unique(cols.app[at][~is_lifted[cols.app[at]]])
    density = cols.value[cols.first[outside]] / np.maximum(instance.power[outside], TOLERANCE)
    shortlist = outside[np.argsort(-density, kind="stable")[: max(_CANDIDATES - len(lifted), 0)]]
    at = at[is_lifted[cols.app[at]] | np.isin(cols.app[at], shortlist)]
    if not len(at):
        return False
    before = float(placement.worth[lifted].sum())
    app, plot = _usable_pairs(placement, at, is_lifted)
    if len(app) <= _PAIR_MIP_LIMIT:
        return _solve_pairs(placement, nodes, (app, plot), lifted, deadline)
    chosen = _mip(placement, nodes, at, lifted, deadline)
    if chosen is None or cols.value[chosen].sum() <= before + TOLERANCE * max(before, 1.0):
        return False
    previous = [(int(a), int(placement.plot_of[a]), float(placement.worth[a])) for a in lifted]
    for app in lifted:
        placement.remove(int(app))
    after = match_columns(placement, chosen)
    if after > before + TOLERANCE * max(before, 1.0) and (placement.water_left >= -TOLERANCE).all():
        return True
    for entered in cols.app[chosen]:
        if placement.plot_of[entered] >= 0:
            placement.remove(int(entered))
    for one, where, worth in previous:
        placement.place(one, where, worth)
    return False


def _usable_pairs(
    placement: Placement, at: np.ndarray, is_lifted: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(application, plot) pairs of the columns ``at`` whose plot is free or held by a lifted application."""
    lists = [placement.column_plots(int(column)) for column in at]
    plot = np.concatenate(lists) if lists else np.empty(0, dtype=np.int64)
    app = np.repeat(placement.cols.app[at], [len(plots) for plots in lists])
    holder = placement.holder[plot]
    usable = (holder < 0) | is_lifted[np.maximum(holder, 0)]
    return app[usable], plot[usable]


def _solve_pairs(
    placement: Placement,
    nodes: np.ndarray,
    pairs: tuple[np.ndarray, np.ndarray],
    lifted: np.ndarray,
    deadline: float,
) -> bool:
    """The neighbourhood as the exact pair MILP (each application once, each plot once, power and water headroom)."""
    instance = placement.catalogue.instance
    app, plot = pairs
    worth = pair_values(placement.catalogue.value, instance, app, plot)
    apps, app_row = np.unique(app, return_inverse=True)
    plots, plot_row = np.unique(plot, return_inverse=True)
    node_row = np.searchsorted(nodes, instance.power_node[plot])
    room = placement.power_left[nodes] + np.bincount(
        np.searchsorted(nodes, instance.power_node[placement.plot_of[lifted]]),
        weights=instance.power[lifted],
        minlength=len(nodes),
    )
    # water headroom of the plots' water nodes, with what the lifted applications free
    water_node = instance.water_node[plot]
    wet = (water_node >= 0) & (instance.water[app] > 0)
    water_nodes, water_row = np.unique(water_node[wet], return_inverse=True)
    water_room = placement.water_left[water_nodes].copy()
    lifted_wet = lifted[instance.water[lifted] > 0]
    lifted_node = instance.water_node[placement.plot_of[lifted_wet]]
    inside = np.isin(lifted_node, water_nodes)
    np.add.at(
        water_room,
        np.searchsorted(water_nodes, lifted_node[inside]),
        instance.water[lifted_wet[inside]],
    )
    count = len(app)
    head = len(apps) + len(plots) + len(nodes)
    matrix = sp.csc_matrix(
        (
            np.r_[np.ones(2 * count), instance.power[app], instance.water[app[wet]]],
            (
                np.r_[
                    app_row,
                    len(apps) + plot_row,
                    len(apps) + len(plots) + node_row,
                    head + water_row,
                ],
                np.r_[np.tile(np.arange(count), 3), np.flatnonzero(wet)],
            ),
        ),
        shape=(head + len(water_nodes), count),
    )
    upper = np.r_[np.ones(len(apps) + len(plots)), room, water_room]
    scale = max(float(worth.max(initial=0.0)), TOLERANCE)
    highs = silent_highs()
    pass_model(highs, matrix, upper, worth / scale, integer=True)
    highs.setOptionValue(
        "time_limit", max(min(_SECONDS_PER_MIP, deadline - time.perf_counter()), 0.05)
    )
    highs.setOptionValue("mip_rel_gap", 1e-9)
    current = np.flatnonzero(placement.plot_of[app] == plot)
    highs.setSolution(count, current.astype(np.int32), np.ones(len(current)))
    highs.run()
    before = float(placement.worth[lifted].sum())
    if highs.getInfo().primal_solution_status != 2:
        return False
    chosen = np.flatnonzero(np.asarray(highs.getSolution().col_value) > 0.5)
    if worth[chosen].sum() <= before + TOLERANCE * max(before, 1.0):
        return False
    previous = [(int(a), int(placement.plot_of[a]), float(placement.worth[a])) for a in lifted]
    for one in lifted:
        placement.remove(int(one))
    for pair in chosen:
        placement.place(int(app[pair]), int(plot[pair]), float(worth[pair]))
    if (placement.water_left >= -TOLERANCE).all() and (
        placement.power_left >= -TOLERANCE * np.maximum(instance.power_cap, 1.0)
    ).all():
        return True
    for pair in chosen:
        placement.remove(int(app[pair]))
    for one, where, value in previous:
        placement.place(one, where, value)
    return False


def _mip(
    placement: Placement, nodes: np.ndarray, at: np.ndarray, lifted: np.ndarray, deadline: float
) -> np.ndarray | None:
    """Columns chosen by the neighbourhood's MILP: each application once, each node's headroom, each group's free plots."""
    catalogue, cols = placement.catalogue, placement.cols
    instance = catalogue.instance
    apps, app_row = np.unique(cols.app[at], return_inverse=True)
    node_row = np.searchsorted(nodes, catalogue.group_power[cols.group[at]])
    groups, group_row = np.unique(cols.group[at], return_inverse=True)
    room = placement.power_left[nodes] + np.bincount(
        np.searchsorted(nodes, instance.power_node[placement.plot_of[lifted]]),
        weights=instance.power[lifted],
        minlength=len(nodes),
    )
    held = placement.holder >= 0
    held[placement.plot_of[lifted]] = False
    free_plots = np.bincount(catalogue.group[~held], minlength=len(catalogue.group_size))
    count = len(at)
    rows = np.r_[app_row, len(apps) + node_row, len(apps) + len(nodes) + group_row]
    values = np.r_[np.ones(count), instance.power[cols.app[at]], np.ones(count)]
    matrix = sp.csc_matrix(
        (values, (rows, np.tile(np.arange(count), 3))),
        shape=(len(apps) + len(nodes) + len(groups), count),
    )
    upper = np.r_[np.ones(len(apps)), room, free_plots[groups].astype(float)]
    scale = max(float(cols.value[at].max()), TOLERANCE)
    highs = silent_highs()
    pass_model(highs, matrix, upper, cols.value[at] / scale, integer=True)
    highs.setOptionValue(
        "time_limit", max(min(_SECONDS_PER_MIP, deadline - time.perf_counter()), 0.05)
    )
    highs.setOptionValue("mip_rel_gap", 1e-6)
    current = np.flatnonzero(
        np.isin(cols.app[at], lifted)
        & (cols.group[at] == catalogue.group[placement.plot_of[np.maximum(cols.app[at], 0)]])
    )
    highs.setSolution(count, current.astype(np.int32), np.ones(len(current)))
    highs.run()
    if highs.getInfo().primal_solution_status != 2:
        return None
    return at[np.asarray(highs.getSolution().col_value) > 0.5]


def optimise(
    catalogue: Catalogue,
    cols: Columns,
    deadline: float,
    mip_gap: float,
    on_progress: Callable[[float, float, float], None] | None,
    started: float,
) -> tuple[np.ndarray, str, float]:
    """Greedy, a Lagrangian bound, re-packing rounds, then neighbourhood search until the gap closes or time runs out.

    Returns each application's plot (-1: none), the status and the proven relative gap.
    """
    placement = Placement(catalogue, cols)
    greedy(placement, time.perf_counter() + 0.3 * max(deadline - time.perf_counter(), 0.0))
    binding = binding_nodes(catalogue, cols)

    def report(bound: float) -> None:
        if on_progress is not None:
            on_progress(time.perf_counter() - started, placement.objective(), bound)

    report(math.inf)
    bound_deadline = time.perf_counter() + 0.2 * max(deadline - time.perf_counter(), 0.0)
    bound, price = lagrangian_bound(catalogue, cols, placement.objective(), bound_deadline)
    report(bound)

    def done() -> bool:
        return relative_gap(placement.objective(), bound) <= mip_gap

    while not done() and time.perf_counter() < deadline:
        if not repack(placement, binding, deadline):
            break
        report(bound)
    search(placement, binding, deadline, price, done, lambda: report(bound))
    gap = relative_gap(placement.objective(), bound)
    return placement.plot_of, "optimal" if gap <= mip_gap else "time_limit", gap
