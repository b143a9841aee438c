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
    fits_headroom,
    pair_values,
    plot_order,
    static_rules_for,
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
        return np.asarray(self.by_area[self.category[app]][self.low[app] : self.high[app]])


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


class _RuleMasks:
    """Each static rule's plot mask, computed once per distinct application attribute it reads."""

    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        self.cache: dict[tuple[str, object], np.ndarray] = {}
        self.plots = np.arange(len(instance.plot_ids))

    def get(self, stage: str, app: int) -> np.ndarray:
        """The plot mask of ``stage`` for an application like ``app`` (cached by the attribute it reads)."""
        instance = self.instance
        attribute = {
            "sector": instance.sector_code,
            "rail": instance.rail_need,
            "hazard": instance.hazard,
            "power": instance.power > 0,
            "water": instance.water > 0,
        }[stage][app]
        key = (stage, attribute.item())
        if key not in self.cache:
            apps = np.full(len(self.plots), app)
            self.cache[key] = static_rules_for(instance, stage, apps, self.plots)
        return self.cache[key]


def build(instance: Instance, value: Value) -> Catalogue:
    """Index the plots by category and group; counts per rule for the reasons come for free."""
    n_plots = len(instance.plot_ids)
    order = plot_order(instance)
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
    masks = _RuleMasks(instance)
    for c in range(int(category.max(initial=-1)) + 1):
        members = np.flatnonzero(category == c)
        passing = np.ones(n_plots, dtype=bool)
        for stage in STATIC_STAGES[1:]:
            passing &= masks.get(stage, int(members[0]))
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


def result_pairs(
    catalogue: Catalogue, plot_of: np.ndarray, column: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> Pairs:
    """Pairs for the result and its reasons, as few as give the same reasons as the full pair list.

    ``plot_of[a]`` is the plot given to application ``a`` (-1: none); ``column`` holds the
    (application, group) columns as application, slice start into ``by_group`` and length.
    A placed application gets its own pair.  An unplaced one gets, per group, its smallest
    free fitting plot (the reasons read only which groups have a free plot, their headroom
    and the smallest free plot that fits), or one taken plot when every fitting plot is
    taken.  Values are filled for the placed pairs only (the objective reads no others).
    """
    instance = catalogue.instance
    n_apps = len(instance.app_ids)
    col_app, col_start, col_count = column
    taken = np.zeros(len(instance.plot_ids), dtype=bool)
    taken[plot_of[plot_of >= 0]] = True
    col_plot = np.full(len(col_app), -1, dtype=np.int64)
    first_plot = np.full(len(col_app), -1, dtype=np.int64)
    category = catalogue.category[col_app]
    wanted = plot_of[col_app] < 0
    for c, plots in enumerate(catalogue.by_group):
        rows = np.flatnonzero(wanted & (category == c))
        if not len(rows) or not len(plots):
            continue
        position = np.arange(len(plots) + 1)
        free_at = np.where(np.r_[~taken[plots], True], position, len(plots))
        next_free = np.minimum.accumulate(free_at[::-1])[::-1]
        found = next_free[col_start[rows]]
        inside = found < col_start[rows] + col_count[rows]
        col_plot[rows[inside]] = plots[found[inside]]
        first_plot[rows] = plots[col_start[rows]]
    keep = col_plot >= 0
    app, plot = col_app[keep], col_plot[keep]
    has_free = np.bincount(app, minlength=n_apps) > 0
    fitting = np.bincount(col_app, weights=col_count, minlength=n_apps).astype(np.int64)
    # every fitting plot taken: one of them is enough to say so
    blocked = np.flatnonzero((plot_of < 0) & ~has_free & (fitting > 0))
    first_column = np.searchsorted(col_app, blocked)
    app = np.r_[app, blocked, np.flatnonzero(plot_of >= 0)]
    plot = np.r_[plot, first_plot[first_column], plot_of[plot_of >= 0]]
    rank = np.empty(len(instance.plot_ids), dtype=np.int64)
    rank[plot_order(instance)] = np.arange(len(instance.plot_ids))
    order = np.lexsort((rank[plot], app))
    app, plot = app[order], plot[order]
    everyone = np.arange(n_apps)
    start = np.searchsorted(app, everyone, side="left")
    value = np.zeros(len(app))
    placed = np.flatnonzero(plot_of >= 0)
    value[start[placed]] = pair_values(catalogue.value, instance, placed, plot_of[placed])
    counts = dict(catalogue.stage_counts)
    counts["headroom"] = np.where(plot_of >= 0, np.maximum(fitting, 1), fitting)
    lost = np.flatnonzero((counts[STATIC_STAGES[-1]] > 0) & (fitting == 0) & (plot_of < 0))
    connected = [catalogue.plots_of(int(a)) for a in lost]
    return Pairs(
        app=app,
        plot=plot,
        value=value,
        start=start,
        end=np.searchsorted(app, everyone, side="right"),
        stage_counts=counts,
        connected_app=np.repeat(lost, [len(p) for p in connected]).astype(np.int64),
        connected_plot=np.concatenate(connected) if connected else np.empty(0, np.int64),
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
