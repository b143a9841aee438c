"""The MILP over compatible pairs: column generation for a proven bound, then HiGHS on the survivors."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from planner.allocation.greedy import State, best_values
from planner.allocation.inputs import TOLERANCE, Instance
from planner.allocation.pairs import Pairs, distinct_users, representatives
from planner.allocation.substations import lagrangian_bound
from planner.highs import silent_highs

if TYPE_CHECKING:
    import highspy

_PROMISING_PER_APPLICATION = 20
# a MIP's presolve and root take about this many times the column generation's LP time per column
_ROOT_FACTOR = 10.0


def _rows(
    key: np.ndarray, coefficient: np.ndarray, upper: np.ndarray, min_entries: int = 2
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One ``sum coefficient * x <= upper[key]`` row per key (>= 0) having at least ``min_entries`` pairs."""
    columns = np.flatnonzero(key >= 0)
    keys, row, counts = np.unique(key[columns], return_inverse=True, return_counts=True)
    kept = counts[row] >= min_entries
    keys_kept = np.flatnonzero(counts >= min_entries)
    renumber = np.cumsum(counts >= min_entries) - 1
    return renumber[row[kept]], columns[kept], coefficient[columns[kept]], upper[keys[keys_kept]]


def _node_cuts(
    instance: Instance, pairs: Pairs, binding: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Valid (key, coefficient, upper) families that tighten each binding power-node knapsack.

    * big-item clique: applications needing more than half a node's headroom exclude each other;
    * cardinality: no more applications than the smallest demands that fit together.
    """
    node = np.where(
        binding[np.maximum(instance.power_node[pairs.plot], 0)]
        & (instance.power_node[pairs.plot] >= 0),
        instance.power_node[pairs.plot],
        -1,
    )
    node = np.where(instance.power[pairs.app] > 0, node, -1)
    cap = instance.power_cap
    ones = np.ones(len(pairs.app))
    big = np.where(instance.power[pairs.app] > cap[np.maximum(node, 0)] / 2, node, -1)
    return [(big, ones, np.ones(len(cap))), (node, ones, _fitting_counts(instance, pairs, node))]


def _fitting_counts(instance: Instance, pairs: Pairs, node: np.ndarray) -> np.ndarray:
    """Most applications each node can host: count of its smallest demands whose sum fits the headroom."""
    limit = np.full(len(instance.power_cap), np.inf)
    at_node = node >= 0
    users = distinct_users(node[at_node], pairs.app[at_node], len(instance.app_ids))
    for n in np.unique(users[0]):
        demand = np.sort(instance.power[users[1, users[0] == n]])
        limit[n] = np.searchsorted(
            np.cumsum(demand), instance.power_cap[n] * (1 + TOLERANCE), side="right"
        )
    return limit


def _model(
    instance: Instance, pairs: Pairs, power_binding: np.ndarray, water_binding: np.ndarray
) -> tuple[sp.csc_matrix, np.ndarray, np.ndarray, np.ndarray]:
    """Constraint matrix and row upper bounds over the pair variables.

    Also returns which rows are not a binding substation's own (headroom and its cuts)
    and, per pair, whether it draws on such a headroom row.
    """
    ones = np.ones(len(pairs.app))
    power_node = instance.power_node[pairs.plot]
    water_node = instance.water_node[pairs.plot]
    power_key = np.where(
        (instance.power[pairs.app] > 0)
        & (power_node >= 0)
        & power_binding[np.maximum(power_node, 0)],
        power_node,
        -1,
    )
    water_key = np.where(
        (instance.water[pairs.app] > 0)
        & (water_node >= 0)
        & water_binding[np.maximum(water_node, 0)],
        water_node,
        -1,
    )
    families = [
        _rows(pairs.app, ones, np.ones(len(instance.app_ids))),
        _rows(pairs.plot, ones, np.ones(len(instance.plot_ids))),
        _rows(power_key, instance.power[pairs.app], instance.power_cap, 1),
        _rows(water_key, instance.water[pairs.app], instance.water_cap, 1),
    ]
    for key, coefficient, upper in _node_cuts(instance, pairs, power_binding):
        row, column, value, bound = _rows(key, coefficient, upper)
        useful = np.flatnonzero(np.bincount(row, minlength=len(bound)) > bound)
        keep = np.isin(row, useful)
        families.append(
            (np.searchsorted(useful, row[keep]), column[keep], value[keep], bound[useful])
        )
    offset, triplets, uppers, own = 0, [], [], []
    for family, (row, column, value, bound) in enumerate(families):
        triplets.append((row + offset, column, value))
        uppers.append(bound)
        own.append(np.full(len(bound), family == 2 or family >= 4))
        offset += len(bound)
    rows, columns, values = (np.concatenate(part) for part in zip(*triplets))
    matrix = sp.csc_matrix((values, (rows, columns)), shape=(offset, len(pairs.app)))
    return matrix, np.concatenate(uppers), ~np.concatenate(own), power_key >= 0


def pass_model(
    highs: highspy.Highs, matrix: sp.csc_matrix, upper: np.ndarray, cost: np.ndarray, integer: bool
) -> None:
    import highspy

    count = matrix.shape[1]
    highs.passModel(
        count,
        matrix.shape[0],
        matrix.nnz,
        int(highspy.MatrixFormat.kColwise),
        int(highspy.ObjSense.kMaximize),
        0.0,
        cost,
        np.zeros(count),
        np.ones(count),
        np.full(matrix.shape[0], -highspy.kHighsInf),
        upper,
        matrix.indptr,
        matrix.indices,
        matrix.data,
        np.full(count, int(integer), dtype=np.int32),
    )


def _column_generation(
    matrix: sp.csc_matrix, upper: np.ndarray, cost: np.ndarray, initial: np.ndarray, deadline: float
) -> tuple[np.ndarray, float, np.ndarray]:
    """LP relaxation over all pairs by pricing; returns reduced costs, the Lagrangian bound they prove and the row prices.

    For any row prices ``y >= 0`` and ``rc = cost - A^T y``, every allocation ``x``
    satisfies ``cost @ x <= upper @ y + rc @ x``, so ``upper @ y + sum(max(rc, 0))``
    bounds the optimum, and it is tight once no column prices out.
    """
    highs = silent_highs()
    columns = np.unique(initial)
    pass_model(highs, matrix[:, columns], upper, cost[columns], integer=False)
    in_lp = np.zeros(len(cost), dtype=bool)
    in_lp[columns] = True
    while True:
        if math.isfinite(deadline):
            highs.setOptionValue("time_limit", max(deadline - time.perf_counter(), 0.05))
        highs.run()
        duals = np.asarray(highs.getSolution().row_dual)
        # any non-negative prices prove a bound; without duals (time limit hit early) zero prices still do
        prices = np.maximum(duals, 0.0) if len(duals) == len(upper) else np.zeros(len(upper))
        reduced = cost - matrix.T @ prices
        bound = float(upper @ prices + reduced[reduced > 0].sum())
        entering = np.flatnonzero(~in_lp & (reduced > 1e-9))
        if not len(entering) or time.perf_counter() >= deadline:
            return reduced, bound, prices
        entering = entering[np.argsort(-reduced[entering])[: max(len(upper), 1000)]]
        in_lp[entering] = True
        block = matrix[:, entering]
        highs.addCols(
            len(entering),
            cost[entering],
            np.zeros(len(entering)),
            np.ones(len(entering)),
            block.nnz,
            block.indptr[:-1],
            block.indices,
            block.data,
        )


def milp(
    instance: Instance,
    pairs: Pairs,
    binding: tuple[np.ndarray, np.ndarray],
    group_of_plot: np.ndarray,
    warm: State,
    limits: tuple[float | None, float],
    on_progress: Callable[[float, float, float], None] | None,
    started: float,
) -> tuple[State, str, float]:
    """Price out the LP, drop pairs that cannot beat the warm start, and let HiGHS finish the rest."""
    time_limit, mip_gap = limits
    # leave a little of the budget for rebuilding the allocation and its reasons
    deadline = (
        started + time_limit - min(1.0, 0.05 * time_limit) if time_limit is not None else math.inf
    )
    matrix, upper, priced, in_knapsack = _model(instance, pairs, *binding)
    # tenge-sized costs (1e10) wreck HiGHS's tolerances; solve in units of the largest pair value
    scale = max(float(pairs.value.max(initial=0.0)), TOLERANCE)
    cost = pairs.value / scale
    initial = np.r_[representatives(pairs, group_of_plot), warm.chosen[warm.chosen >= 0]]
    lp_started = time.perf_counter()
    reduced, lp_bound, prices = _column_generation(matrix, upper, cost, initial, deadline)
    # HiGHS cannot be interrupted in a MIP's presolve and root, so a stage starts only if,
    # at this machine's measured LP speed, its root plausibly ends before the deadline
    seconds_per_column = (time.perf_counter() - lp_started) / max(len(initial), 1)
    bound = min(
        lp_bound,
        _knapsack_bound(
            (matrix, upper, cost), prices, priced, (instance, pairs, in_knapsack), deadline
        ),
    )
    incumbent = warm.objective() / scale
    best = warm
    if on_progress is not None:
        on_progress(time.perf_counter() - started, warm.objective(), bound * scale)
    # first a quick MILP on the pairs the LP finds attractive (price-and-branch: a heuristic), then the exact one
    for stage in ("promising", "exact"):
        if relative_gap(incumbent, bound) <= mip_gap or time.perf_counter() >= deadline:
            break
        if stage == "promising":
            columns = np.argsort(-reduced)[: _PROMISING_PER_APPLICATION * len(instance.app_ids)]
            stage_deadline = time.perf_counter() + (deadline - time.perf_counter()) / 3
        else:
            # a pair with reduced cost below -(bound - incumbent) cannot be part of a better allocation
            columns = np.flatnonzero(reduced >= incumbent - lp_bound - 1e-7)
            stage_deadline = deadline
        predicted = _ROOT_FACTOR * seconds_per_column * len(columns)
        if math.isfinite(deadline) and time.perf_counter() + predicted > stage_deadline:
            break
        progress = (
            _progress_relay(on_progress, started, scale, (incumbent, bound), stage == "exact")
            if on_progress
            else None
        )
        state, dual, status = _solve_subset(
            instance,
            pairs,
            (matrix, upper, cost),
            np.union1d(columns, best.chosen[best.chosen >= 0]),
            best,
            (stage_deadline, mip_gap),
            progress,
        )
        best, incumbent = state, state.objective() / scale
        if stage == "exact":
            proven = _proven_bound(dual, (incumbent, bound))
            return best, status, relative_gap(incumbent, proven)
    return (
        best,
        "optimal" if relative_gap(incumbent, bound) <= mip_gap else "time_limit",
        relative_gap(incumbent, bound),
    )


def _knapsack_bound(
    model: tuple[sp.csc_matrix, np.ndarray, np.ndarray],
    prices: np.ndarray,
    priced: np.ndarray,
    decomposition: tuple[Instance, Pairs, np.ndarray],
    deadline: float,
) -> float:
    """The same row prices with each binding substation's knapsack solved exactly instead of priced: a tighter bound."""
    matrix, upper, cost = model
    instance, pairs, in_knapsack = decomposition
    kept = np.where(priced, prices, 0.0)
    return float(upper @ kept) + lagrangian_bound(
        instance, pairs, cost - matrix.T @ kept, in_knapsack, deadline
    )


def _solve_subset(
    instance: Instance,
    pairs: Pairs,
    model: tuple[sp.csc_matrix, np.ndarray, np.ndarray],
    columns: np.ndarray,
    warm: State,
    limits: tuple[float, float],
    progress: Callable[[highspy.HighsCallbackEvent], None] | None,
) -> tuple[State, float, str]:
    """HiGHS MILP over a subset of pair columns, warm-started; returns the allocation, HiGHS's dual bound and status."""
    import highspy

    matrix, upper, cost = model
    deadline, mip_gap = limits
    highs = silent_highs()
    pass_model(highs, matrix[:, columns], upper, cost[columns], integer=True)
    highs.setOptionValue("mip_rel_gap", mip_gap)
    if math.isfinite(deadline):
        highs.setOptionValue("time_limit", max(deadline - time.perf_counter(), 0.05))
    warm_columns = warm.chosen[warm.chosen >= 0]
    highs.setSolution(
        len(columns),
        np.searchsorted(columns, warm_columns).astype(np.int32),
        np.ones(len(warm_columns)),
    )
    if progress is not None:
        highs.cbMipInterrupt.subscribe(progress)
        highs.cbMipImprovingSolution.subscribe(progress)
    highs.run()
    state = (
        _state_from_solution(
            instance, pairs, columns[np.asarray(highs.getSolution().col_value) > 0.5]
        )
        if highs.getInfo().primal_solution_status == 2
        else warm
    )
    if state.objective() < warm.objective():
        state = warm
    state.fill(np.argsort(-best_values(instance, pairs), kind="stable"))
    status = highs.getModelStatus()
    label = "optimal" if status == highspy.HighsModelStatus.kOptimal else "time_limit"
    dual = highs.getInfo().mip_dual_bound
    return state, dual if math.isfinite(dual) else math.inf, label


def _state_from_solution(instance: Instance, pairs: Pairs, chosen: np.ndarray) -> State:
    """Rebuild an allocation from solver columns, re-checking every rule so solver tolerances cannot leak."""
    state = State(instance, pairs)
    for pair in chosen:
        app = int(pairs.app[pair])
        if state.chosen[app] < 0 and pair in state.options(app):
            state.place(app, int(pair))
    return state


def _proven_bound(dual_bound: float, ceiling: tuple[float, float]) -> float:
    """Bound on the full model: better allocations only use kept pairs, so HiGHS's bound applies above the warm start."""
    incumbent, lagrangian = ceiling
    return min(lagrangian, max(incumbent, dual_bound))


def _progress_relay(
    on_progress: Callable[[float, float, float], None],
    started: float,
    scale: float,
    ceiling: tuple[float, float],
    exact: bool,
) -> Callable[[highspy.HighsCallbackEvent], None]:
    """HiGHS callback reporting (elapsed, objective, proven bound) in caller units at most twice a second.

    On a heuristic column subset HiGHS's own bound proves nothing, so only the Lagrangian one is reported.
    """
    last = [-1.0]

    def relay(event: highspy.HighsCallbackEvent) -> None:
        now = time.perf_counter() - started
        if now - last[0] >= 0.5:
            last[0] = now
            primal = max(event.data_out.mip_primal_bound, ceiling[0])
            bound = _proven_bound(event.data_out.mip_dual_bound, ceiling) if exact else ceiling[1]
            on_progress(now, primal * scale, bound * scale)

    return relay


def relative_gap(objective: float, bound: float) -> float:
    if not math.isfinite(bound):
        return math.inf
    return max(bound - objective, 0.0) / max(abs(objective), TOLERANCE)
