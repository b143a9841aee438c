"""Compatible (application, plot) pairs under the static rules, and exact reductions of them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from planner.allocation.inputs import TOLERANCE, Instance, Value, sorted_unique

STATIC_STAGES = ("size", "sector", "rail", "hazard", "power", "water")


@dataclass
class Pairs:
    """Statically compatible (application, plot) pairs, grouped by application in plot (area, id) order."""

    app: np.ndarray
    plot: np.ndarray
    value: np.ndarray
    start: np.ndarray
    end: np.ndarray
    stage_counts: dict[str, np.ndarray]
    connected_app: np.ndarray
    connected_plot: np.ndarray


def pair_values(value: Value, instance: Instance, app: np.ndarray, plot: np.ndarray) -> np.ndarray:
    """Objective value of each (application, plot) pair (see :class:`Value`)."""
    result = value.per_app[app] + value.per_plot[plot]
    if value.fit_weight:
        area = instance.area[plot]
        result = result + value.fit_weight * np.where(
            area > 0, instance.min_ha[app] / np.maximum(area, TOLERANCE), 1.0
        )
    if value.preference_weight and len(value.preference_keys):
        preferred = np.isin(
            app.astype(np.int64) * len(instance.plot_ids) + plot, value.preference_keys
        )
        result = result + value.preference_weight * preferred
    return np.asarray(result, dtype=float)


def plot_order(instance: Instance) -> np.ndarray:
    """Plot positions by (area, plot id): the order smallest-plot rules and slices use."""
    tie_break = pd.Series(instance.plot_ids).astype(str).rank(method="first").to_numpy()
    return np.lexsort((tie_break, instance.area))


def compatible_pairs(instance: Instance, value: Value) -> Pairs:
    """Every (application, plot) pair passing the static rules, plus per-rule survivor counts for reasons."""
    order = plot_order(instance)
    sorted_area = instance.area[order]
    low = np.searchsorted(sorted_area, instance.min_ha - TOLERANCE, side="left")
    lengths = np.maximum(
        np.searchsorted(sorted_area, instance.max_ha + TOLERANCE, side="right") - low, 0
    )
    app = np.repeat(np.arange(len(instance.app_ids)), lengths)
    offsets = np.repeat(np.cumsum(lengths) - lengths, lengths)
    plot = order[np.arange(len(app)) - offsets + np.repeat(low, lengths)]
    counts: dict[str, np.ndarray] = {}
    passing = np.ones(len(app), dtype=bool)
    for name, mask in static_rules(instance, app, plot).items():
        passing &= mask
        counts[name] = np.bincount(app[passing], minlength=len(instance.app_ids))
    connected_app, connected_plot = app[passing], plot[passing]
    fits = fits_headroom(
        instance.power[connected_app], instance.power_cap, instance.power_node[connected_plot]
    )
    fits &= fits_headroom(
        instance.water[connected_app], instance.water_cap, instance.water_node[connected_plot]
    )
    counts["headroom"] = np.bincount(connected_app[fits], minlength=len(instance.app_ids))
    return _pairs(
        instance,
        value,
        connected_app[fits],
        connected_plot[fits],
        counts,
        connected_app,
        connected_plot,
    )


def static_rules(instance: Instance, app: np.ndarray, plot: np.ndarray) -> dict[str, np.ndarray]:
    """Whether each (application, plot) pair passes each static rule, in ``STATIC_STAGES`` order."""
    return {stage: static_rules_for(instance, stage, app, plot) for stage in STATIC_STAGES}


def static_rules_for(
    instance: Instance, stage: str, app: np.ndarray, plot: np.ndarray
) -> np.ndarray:
    """Whether each (application, plot) pair passes one static rule (one of ``STATIC_STAGES``)."""
    if stage == "size":
        area = instance.area[plot]
        return np.asarray(
            (area >= instance.min_ha[app] - TOLERANCE) & (area <= instance.max_ha[app] + TOLERANCE)
        )
    if stage == "sector":
        return _sector_allowed(instance, app, plot)
    if stage == "rail":
        return np.asarray(~instance.rail_need[app] | instance.rail[plot])
    if stage == "hazard":
        return np.asarray(instance.hazard[app] <= instance.hazard_ok[plot])
    if stage == "power":
        return np.asarray((instance.power[app] == 0) | (instance.power_node[plot] >= 0))
    return np.asarray((instance.water[app] == 0) | (instance.water_node[plot] >= 0))


def _pairs(
    instance: Instance,
    value: Value,
    app: np.ndarray,
    plot: np.ndarray,
    counts: dict[str, np.ndarray],
    connected_app: np.ndarray,
    connected_plot: np.ndarray,
) -> Pairs:
    applications = np.arange(len(instance.app_ids))
    return Pairs(
        app=app,
        plot=plot,
        value=pair_values(value, instance, app, plot),
        start=np.searchsorted(app, applications, side="left"),
        end=np.searchsorted(app, applications, side="right"),
        stage_counts=counts,
        connected_app=connected_app,
        connected_plot=connected_plot,
    )


def _sector_allowed(instance: Instance, app: np.ndarray, plot: np.ndarray) -> np.ndarray:
    code = instance.sector_code[app]
    keys = plot.astype(np.int64) * instance.sector_vocabulary + code
    allowed = instance.allowed_sector_keys
    if not len(allowed):
        return np.asarray(instance.any_sector[plot], dtype=bool)
    listed = allowed[np.minimum(np.searchsorted(allowed, keys), len(allowed) - 1)] == keys
    return np.asarray(instance.any_sector[plot] | listed, dtype=bool)


def fits_headroom(demand: np.ndarray, left: np.ndarray, node: np.ndarray) -> np.ndarray:
    """Whether each demand fits the headroom left at its node; zero demand always fits, even with no node."""
    available = (
        np.where(node >= 0, left[np.maximum(node, 0)], 0.0) if len(left) else np.zeros(len(node))
    )
    return np.asarray((demand == 0) | (available >= demand - TOLERANCE * np.maximum(demand, 1.0)))


def restrict(pairs: Pairs, keep: np.ndarray) -> Pairs:
    app = pairs.app[keep]
    applications = np.arange(len(pairs.start))
    return Pairs(
        app=app,
        plot=pairs.plot[keep],
        value=pairs.value[keep],
        start=np.searchsorted(app, applications, side="left"),
        end=np.searchsorted(app, applications, side="right"),
        stage_counts=pairs.stage_counts,
        connected_app=pairs.connected_app,
        connected_plot=pairs.connected_plot,
    )


def distinct_users(node: np.ndarray, app: np.ndarray, n_apps: int) -> np.ndarray:
    """Distinct (node, application) rows as a 2 x k array, via one 1-D unique over combined keys."""
    if not len(node):
        return np.empty((2, 0), dtype=np.int64)
    # node -1 (none) maps below every real node and still decodes back to -1
    keys = sorted_unique((node.astype(np.int64) + 1) * n_apps + app)
    return np.stack([keys // n_apps - 1, keys % n_apps])


def binding_nodes(
    instance: Instance,
    pairs: Pairs,
    demand: np.ndarray,
    cap: np.ndarray,
    node_of_plot: np.ndarray,
) -> np.ndarray:
    """Nodes whose headroom is below the summed demand of every application that could land there."""
    node = node_of_plot[pairs.plot]
    users = distinct_users(node, pairs.app, len(demand))
    users = users[:, (users[0] >= 0) & (demand[users[1]] > 0)]
    load = np.bincount(users[0], weights=demand[users[1]], minlength=len(cap))
    return np.asarray(load > cap + TOLERANCE * np.maximum(cap, 1.0))


def prune_interchangeable(instance: Instance, pairs: Pairs, group_of_plot: np.ndarray) -> Pairs:
    """Drop pairs that provably never need to be used.

    Plots of one group (same binding power and water node) are interchangeable apart
    from their value to the application.  If application ``a`` can only be blocked
    from one of its plots in a group by the ``k - 1`` other applications of that group
    whose size ranges overlap its own, then one of its ``k`` best plots there is always
    free, so moving ``a`` onto it keeps feasibility and never lowers the objective.
    """
    if not len(pairs.app):
        return pairs
    group = group_of_plot[pairs.plot]
    position = np.arange(len(pairs.app))
    order = np.lexsort((position, -pairs.value, group, pairs.app))
    app, grp = pairs.app[order], group[order]
    run_start = np.r_[True, (app[1:] != app[:-1]) | (grp[1:] != grp[:-1])]
    rank = position - np.maximum.accumulate(np.where(run_start, position, 0))
    limit = _competitors(instance, app[run_start], grp[run_start])
    keep = np.zeros(len(order), dtype=bool)
    keep[order] = rank < np.repeat(limit, np.diff(np.r_[np.flatnonzero(run_start), len(order)]))
    return restrict(pairs, keep)


def _competitors(instance: Instance, app: np.ndarray, group: np.ndarray) -> np.ndarray:
    """For each (application, group) run: applications in that group whose [min_ha, max_ha] overlaps, itself included."""
    limit = np.empty(len(app), dtype=np.int64)
    for g in np.unique(group):
        rows = np.flatnonzero(group == g)
        members = app[rows]
        lows, highs = np.sort(instance.min_ha[members]), np.sort(instance.max_ha[members])
        ends_before = np.searchsorted(highs, instance.min_ha[members] - TOLERANCE, side="left")
        starts_after = len(members) - np.searchsorted(
            lows, instance.max_ha[members] + TOLERANCE, side="right"
        )
        limit[rows] = len(members) - ends_before - starts_after
    return limit


def representatives(pairs: Pairs, group_of_plot: np.ndarray) -> np.ndarray:
    """The most valuable pair of each application in each resource group: a small LP to start pricing from."""
    group = group_of_plot[pairs.plot]
    order = np.lexsort((np.arange(len(pairs.app)), -pairs.value, group, pairs.app))
    first = (
        np.r_[
            True,
            (pairs.app[order][1:] != pairs.app[order][:-1])
            | (group[order][1:] != group[order][:-1]),
        ]
        if len(order)
        else np.zeros(0, dtype=bool)
    )
    return order[first]


def resource_group(
    instance: Instance, power_binding: np.ndarray, water_binding: np.ndarray
) -> np.ndarray:
    """Plots drawing on the same binding nodes share a group; non-binding nodes impose nothing."""
    power = np.where(
        (instance.power_node >= 0) & power_binding[np.maximum(instance.power_node, 0)],
        instance.power_node,
        -1,
    )
    water = np.where(
        (instance.water_node >= 0) & water_binding[np.maximum(instance.water_node, 0)],
        instance.water_node,
        -1,
    )
    return (power + 1) * (len(instance.node_names) + 1) + water + 1
