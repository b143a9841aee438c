"""The allocator's entry points: solve and the per-pair rule check."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from geo.i18n import N_
from planner.allocation.greedy import State, assignment, first_come, value_density_search
from planner.allocation.inputs import (
    METHODS,
    AllocationInputError,
    Instance,
    prepare,
    value_model,
)
from planner.allocation.milp import milp
from planner.allocation.pairs import (
    Pairs,
    binding_nodes,
    compatible_pairs,
    fits_headroom,
    prune_interchangeable,
    resource_group,
    static_rules,
)
from planner.allocation.reasons import unallocated_reasons
from planner.allocation.substations import repack


@dataclass
class AllocationResult:
    """Outcome of :func:`solve`.

    Attributes
    ----------
    assignments : pandas.DataFrame
        One row per application in input order: ``app_id``, ``plot_id`` (None when
        unallocated) and ``reason`` (None when allocated, else why not, in words).
    objective : float
        Value of the requested objective for this allocation.
    status : str
        ``"optimal"``, ``"time_limit"`` or ``"heuristic"``.
    gap : float
        Relative gap ``(bound - objective) / objective`` to the best proven bound;
        0.0 when proven optimal, NaN for the greedy baseline.
    method : str
        ``"milp"``, ``"assignment"`` (no capacity can bind: solved as a matching) or ``"greedy"``.
    elapsed_s : float
        Wall-clock seconds spent in :func:`solve`.
    """

    assignments: pd.DataFrame
    objective: float
    status: str
    gap: float
    method: str
    elapsed_s: float


def solve(
    plots: pd.DataFrame,
    applications: pd.DataFrame,
    capacities: pd.DataFrame,
    *,
    objective: str = "weighted",
    weights: Mapping[str, float] | None = None,
    time_limit: float | None = None,
    method: str = "milp",
    mip_gap: float = 1e-6,
    on_progress: Callable[[float, float, float], None] | None = None,
) -> AllocationResult:
    """Allocate plots to applications, at most one each way, maximising ``objective``.

    Parameters
    ----------
    plots : pandas.DataFrame
        ``plot_id``, ``area_ha``, ``rail`` (bool), ``node`` (serving substation; null =
        no power) and ``sectors`` (comma-separated sector codes, ``*`` for any).
        Optional: ``water_node`` (null = no water), ``hazard_ok`` (highest hazard class
        allowed; null = no limit) and ``dist_m`` (connection distance; null = 0).
    applications : pandas.DataFrame
        ``app_id``, ``min_ha``, ``max_ha``, ``sector``, ``rail_need`` (bool),
        ``power_kw``, ``invest`` (tenge) and ``jobs``.  Optional (null = 0 / none):
        ``water_m3d``, ``hazard``, ``priority`` and ``plot_pref`` (comma-separated
        preferred plot ids).
    capacities : pandas.DataFrame
        One row per utility node: ``node``, ``power_kw`` (electrical headroom) and,
        optionally, ``water_m3d`` (water headroom).  Substations and water nodes share
        this table: a plot's ``node`` draws on ``power_kw`` and its ``water_node`` on
        ``water_m3d`` of the named row; null cells mean zero headroom.  A node that is
        referenced by a plot but not listed has zero headroom.  Water is only modelled
        when the ``water_m3d`` column is present.
    objective : {"weighted", "investment", "jobs", "count"}
        ``investment``, ``jobs`` and ``count`` sum ``invest``, ``jobs`` or 1 over the
        allocated applications.  ``weighted`` sums, per allocated (application, plot),
        ``weights[k] * score_k`` over scores scaled to [0, 1]:

        * ``invest``, ``jobs``, ``priority`` - the application's value divided by the
          largest value among all applications (0 when all are 0);
        * ``fit`` - ``min_ha / area_ha`` (1 for a plot no larger than needed);
        * ``distance`` - ``1 - dist_m / max(dist_m)`` over all plots (nearer is better);
        * ``preference`` - 1 when the plot is listed in the application's ``plot_pref``.

        Default weights: invest 0.35, jobs 0.25, priority 0.10, fit 0.10, distance 0.10,
        preference 0.10 (see ``DEFAULT_WEIGHTS``).
    weights : mapping, optional
        Overrides for some of the default weights (only with ``objective="weighted"``);
        weights must be non-negative.
    time_limit : float, optional
        Seconds for the whole call; the MILP returns its best allocation with
        ``status="time_limit"`` and the proven ``gap`` when it runs out.
    method : {"milp", "greedy"}
        ``milp`` optimises: as a plain assignment (``method="assignment"`` in the result)
        when no node's headroom is below the summed demand of every application that
        could use it, else as a MILP over compatible pairs: a value-density greedy with
        swap local search gives the warm start, column generation (HiGHS LP) the bound,
        pairs whose reduced cost shows they cannot improve on the warm start are dropped,
        and HiGHS solves first the most promising pairs, then all survivors.  The gap is
        always against a proven bound.  ``greedy`` is first come, first
        served: applications in input order each take the smallest feasible plot still
        free (ties by ``plot_id``) whose nodes still have headroom.
    mip_gap : float
        Relative gap at which the MILP stops and reports ``status="optimal"``.
    on_progress : callable, optional
        Called during the MILP as ``on_progress(elapsed_s, objective, bound)``.

    Returns
    -------
    AllocationResult
        Assignments with reasons for every unallocated application, plus objective,
        status, gap, method and elapsed time.

    Raises
    ------
    AllocationInputError
        For missing columns, empty or non-numeric required cells, negative values,
        duplicate ids, ``min_ha > max_ha`` or an unknown objective, method or weight.
    """
    started = time.perf_counter()
    if method not in METHODS:
        raise AllocationInputError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if time_limit is not None and not time_limit > 0:
        raise AllocationInputError(f"time_limit must be positive, got {time_limit!r}")
    instance = prepare(plots, applications, capacities)
    pairs = compatible_pairs(instance, value_model(plots, applications, objective, weights))
    if method == "greedy":
        state, status, gap, used = (
            first_come(instance, pairs),
            "heuristic",
            math.nan,
            "greedy",
        )
        blame = N_("an earlier application")
    else:
        state, status, gap, used = _optimise(
            instance, pairs, (time_limit, mip_gap), on_progress, started
        )
        state.prefer_small_plots()
        blame = N_("a higher-value application")
    assignments = _assignments(instance, pairs, state, blame)
    return AllocationResult(
        assignments, state.objective(), status, gap, used, time.perf_counter() - started
    )


def _assignments(instance: Instance, pairs: Pairs, state: State, blame: str) -> pd.DataFrame:
    """One row per application: its plot (None when left out) and, when left out, why."""
    plot_ids = [
        instance.plot_ids[state.pairs.plot[pair]] if pair >= 0 else None for pair in state.chosen
    ]
    return pd.DataFrame(
        {
            "app_id": pd.Series(instance.app_ids, dtype=object),
            "plot_id": pd.Series(plot_ids, dtype=object),
            "reason": pd.Series(unallocated_reasons(instance, pairs, state, blame), dtype=object),
        }
    )


def pair_rules(
    plots: pd.DataFrame, applications: pd.DataFrame, capacities: pd.DataFrame
) -> pd.DataFrame:
    """Which allocation rules every (application, plot) pair passes, one row per pair.

    The same rules and inputs as :func:`solve` (see there for the columns), checked for each
    pair on its own: the capacities are the headroom before any of these applications.

    Returns
    -------
    pandas.DataFrame
        ``app_id``, ``plot_id``, then one bool column per rule, true when the pair passes it:
        ``size`` (area within ``min_ha``-``max_ha``), ``sector``, ``rail``, ``hazard``,
        ``power`` and ``water`` (a connection where there is demand), ``power_headroom``
        and ``water_headroom`` (the demand fits the headroom of the plot's node).

    Raises
    ------
    AllocationInputError
        As :func:`solve`.
    """
    instance = prepare(plots, applications, capacities)
    app = np.repeat(np.arange(len(instance.app_ids)), len(instance.plot_ids))
    plot = np.tile(np.arange(len(instance.plot_ids)), len(instance.app_ids))
    rules = static_rules(instance, app, plot)
    rules["power_headroom"] = fits_headroom(
        instance.power[app], instance.power_cap, instance.power_node[plot]
    )
    rules["water_headroom"] = fits_headroom(
        instance.water[app], instance.water_cap, instance.water_node[plot]
    )
    return pd.DataFrame(
        {"app_id": instance.app_ids[app], "plot_id": instance.plot_ids[plot], **rules}
    )


def _optimise(
    instance: Instance,
    pairs: Pairs,
    limits: tuple[float | None, float],
    on_progress: Callable[[float, float, float], None] | None,
    started: float,
) -> tuple[State, str, float, str]:
    power_binding = binding_nodes(
        instance, pairs, instance.power, instance.power_cap, instance.power_node
    )
    water_binding = binding_nodes(
        instance, pairs, instance.water, instance.water_cap, instance.water_node
    )
    if not power_binding.any() and not water_binding.any():
        return (
            assignment(
                instance,
                prune_interchangeable(
                    instance, pairs, np.zeros(len(instance.plot_ids), dtype=np.int64)
                ),
            ),
            "optimal",
            0.0,
            "assignment",
        )
    group = resource_group(instance, power_binding, water_binding)
    pruned = prune_interchangeable(instance, pairs, group)
    time_limit = limits[0]
    budget = 0.1 * time_limit if time_limit is not None else 10.0
    warm = value_density_search(instance, pruned, time.perf_counter() + budget)
    warm = repack(warm, power_binding, time.perf_counter() + 1.5 * budget)
    state, status, gap = milp(
        instance, pruned, (power_binding, water_binding), group, warm, limits, on_progress, started
    )
    return state, status, gap, "milp"
