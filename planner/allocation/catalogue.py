"""Compatible plots per application without enumerating (application, plot) pairs.

Applications fall into categories by the static rules that do not depend on size (sector,
rail, hazard, need of power and of water); for each category the plots passing those rules
are kept once, in (area, plot id) order and in (resource group, area) order, so every
application's compatible plots are one slice of its category's list, and its compatible
plots in one group another.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.allocation.inputs import TOLERANCE, Instance, Value
from planner.allocation.pairs import (
    STATIC_STAGES,
    Pairs,
    _pair_values,
    _plot_order,
    fits_headroom,
    static_rules,
)


@dataclass
class Catalogue:
    """Per-category plot lists and, per application, where its compatible plots lie in them.

    ``by_area[c]`` lists category ``c``'s plots in (area, id) order; application ``a`` may use
    ``by_area[category[a]][low[a]:high[a]]``.  ``by_group[c]`` lists the same plots by
    (group, area), with ``group_key[c] = group * n_plots + area rank`` for slicing.
    """

    instance: Instance
    value: Value
    category: np.ndarray
    by_area: list[np.ndarray]
    by_group: list[np.ndarray]
    group_key: list[np.ndarray]
    low: np.ndarray
    high: np.ndarray
    low_rank: np.ndarray
    high_rank: np.ndarray
    group: np.ndarray
    group_power: np.ndarray
    group_water: np.ndarray
    group_size: np.ndarray
    stage_counts: dict[str, np.ndarray]

    def plots_of(self, app: int) -> np.ndarray:
        """Every plot passing the static rules for ``app``, in (area, id) order."""
        return self.by_area[self.category[app]][self.low[app] : self.high[app]]


def size_pair_count(instance: Instance) -> int:
    """How many (application, plot) pairs pass the size rule alone: the pair model's scale."""
    area = np.sort(instance.area)
    low = np.searchsorted(area, instance.min_ha - TOLERANCE, side="left")
    high = np.searchsorted(area, instance.max_ha + TOLERANCE, side="right")
    return int(np.maximum(high - low, 0).sum())


def _categories(instance: Instance) -> np.ndarray:
    keys = np.stack(
        [
            instance.sector_code.astype(float),
            instance.rail_need.astype(float),
            instance.hazard,
            (instance.power > 0).astype(float),
            (instance.water > 0).astype(float),
        ],
        axis=1,
    )
    if not len(keys):
        return np.empty(0, dtype=np.int64)
    return np.asarray(np.unique(keys, axis=0, return_inverse=True)[1], dtype=np.int64).ravel()


def _groups(instance: Instance) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group per plot: plots with the same power and water node; with each group's nodes."""
    combined = (instance.power_node + 1) * (len(instance.node_names) + 1) + instance.water_node + 1
    keys, group = np.unique(combined, return_inverse=True)
    width = len(instance.node_names) + 1
    return np.asarray(group, dtype=np.int64).ravel(), keys // width - 1, keys % width - 1


def build(instance: Instance, value: Value) -> Catalogue:
    """Index the plots by category and group; counts per rule for the reasons come for free."""
    n_plots = len(instance.plot_ids)
    order = _plot_order(instance)
    sorted_area = instance.area[order]
    low_rank = np.searchsorted(sorted_area, instance.min_ha - TOLERANCE, side="left")
    high_rank = np.maximum(
        np.searchsorted(sorted_area, instance.max_ha + TOLERANCE, side="right"), low_rank
    )
    category = _categories(instance)
    group, group_power, group_water = _groups(instance)
    n_apps = len(instance.app_ids)
    counts = {"size": high_rank - low_rank}
    counts.update({stage: np.zeros(n_apps, dtype=np.int64) for stage in STATIC_STAGES[1:]})
    low = np.zeros(n_apps, dtype=np.int64)
    high = np.zeros(n_apps, dtype=np.int64)
    by_area: list[np.ndarray] = []
    by_group: list[np.ndarray] = []
    group_key: list[np.ndarray] = []
    for c in range(int(category.max(initial=-1)) + 1):
        members = np.flatnonzero(category == c)
        rules = static_rules(instance, np.full(n_plots, members[0]), np.arange(n_plots))
        passing = np.ones(n_plots, dtype=bool)
        for stage in STATIC_STAGES[1:]:
            passing &= rules[stage]
            prefix = np.r_[0, np.cumsum(passing[order])]
            counts[stage][members] = prefix[high_rank[members]] - prefix[low_rank[members]]
        low[members], high[members] = prefix[low_rank[members]], prefix[high_rank[members]]
        ranks = np.flatnonzero(passing[order])
        plots = order[ranks]
        by_area.append(plots)
        regroup = np.argsort(group[plots], kind="stable")
        by_group.append(plots[regroup])
        group_key.append(group[plots[regroup]].astype(np.int64) * n_plots + ranks[regroup])
    return Catalogue(
        instance=instance,
        value=value,
        category=category,
        by_area=by_area,
        by_group=by_group,
        group_key=group_key,
        low=low,
        high=high,
        low_rank=low_rank,
        high_rank=high_rank,
        group=group,
        group_power=group_power,
        group_water=group_water,
        group_size=np.bincount(group, minlength=len(group_power)),
        stage_counts=counts,
    )


def headroom_fits(catalogue: Catalogue, app: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Whether each application's demand fits the full headroom of each group's nodes."""
    instance = catalogue.instance
    fits = fits_headroom(instance.power[app], instance.power_cap, catalogue.group_power[group])
    fits &= fits_headroom(instance.water[app], instance.water_cap, catalogue.group_water[group])
    return np.asarray(fits)


def result_pairs(catalogue: Catalogue, plot_of: np.ndarray) -> Pairs:
    """Pairs for the result and its reasons: each placed application's own pair, every fitting pair of the others.

    ``plot_of[a]`` is the plot given to application ``a`` (-1: none).  The reasons read
    only the unplaced applications' pairs, so placed ones need no more than their own.
    """
    instance = catalogue.instance
    apps_out: list[np.ndarray] = []
    plots_out: list[np.ndarray] = []
    connected_app: list[np.ndarray] = []
    connected_plot: list[np.ndarray] = []
    headroom = np.zeros(len(instance.app_ids), dtype=np.int64)
    for app in range(len(instance.app_ids)):
        if plot_of[app] >= 0:
            plots = plot_of[app : app + 1]
        else:
            plots = catalogue.plots_of(app)
            fits = headroom_fits(catalogue, np.full(len(plots), app), catalogue.group[plots])
            headroom[app] = int(fits.sum())
            if not headroom[app] and len(plots):
                connected_app.append(np.full(len(plots), app))
                connected_plot.append(plots)
            plots = plots[fits]
        apps_out.append(np.full(len(plots), app, dtype=np.int64))
        plots_out.append(np.asarray(plots, dtype=np.int64))
    app = np.concatenate(apps_out) if apps_out else np.empty(0, dtype=np.int64)
    plot = np.concatenate(plots_out) if plots_out else np.empty(0, dtype=np.int64)
    counts = dict(catalogue.stage_counts)
    # a placed application has at least its own plot, which is all the reasons ask of it
    counts["headroom"] = np.where(plot_of >= 0, 1, headroom)
    everyone = np.arange(len(instance.app_ids))
    return Pairs(
        app=app,
        plot=plot,
        value=_pair_values(catalogue.value, instance, app, plot),
        start=np.searchsorted(app, everyone, side="left"),
        end=np.searchsorted(app, everyone, side="right"),
        stage_counts=counts,
        connected_app=np.concatenate(connected_app) if connected_app else np.empty(0, np.int64),
        connected_plot=np.concatenate(connected_plot) if connected_plot else np.empty(0, np.int64),
    )


def first_come(catalogue: Catalogue) -> np.ndarray:
    """First come, first served on the catalogue: each application in input order takes its smallest feasible plot.

    Returns the plot of each application (-1: none); the same rule as
    :func:`planner.allocation.greedy.first_come`, without the pair list.
    """
    instance = catalogue.instance
    holder = np.zeros(len(instance.plot_ids), dtype=bool)
    power_left, water_left = instance.power_cap.copy(), instance.water_cap.copy()
    plot_of = np.full(len(instance.app_ids), -1, dtype=np.int64)
    for app in range(len(instance.app_ids)):
        plots = catalogue.plots_of(app)
        free = plots[~holder[plots]]
        if not len(free):
            continue
        group = catalogue.group[free]
        fits = fits_headroom(
            np.full(len(free), instance.power[app]), power_left, catalogue.group_power[group]
        )
        fits &= fits_headroom(
            np.full(len(free), instance.water[app]), water_left, catalogue.group_water[group]
        )
        if fits.any():
            plot = int(free[np.argmax(fits)])
            plot_of[app] = plot
            holder[plot] = True
            if instance.power[app] > 0:
                power_left[instance.power_node[plot]] -= instance.power[app]
            if instance.water[app] > 0:
                water_left[instance.water_node[plot]] -= instance.water[app]
    return plot_of
