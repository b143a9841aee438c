"""The allocation model by (application, plot group) columns: a proven bound and a concrete allocation without the pair list.

A column is an application on a group of plots that share their power and water nodes;
its value is the best value the application can get from a plot of that group (exact for
the investment, jobs and count objectives, an upper bound for the weighted one).  The LP
over these columns, with one row per application, per binding node headroom and per group
(no more applications than plots), relaxes the pair model, so its Lagrangian bound bounds
every allocation.  The allocation itself is built plot by plot: value-density greedy, then
exact per-substation knapsack re-packing matched to that substation's real plots.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from planner.allocation.catalogue import Catalogue
from planner.allocation.inputs import TOLERANCE, sorted_unique
from planner.allocation.pairs import fits_headroom, pair_values
from planner.allocation.substations import _knapsack, shortlist

_BOUND_ITERATIONS = 500


@dataclass
class Columns:
    """(application, group) columns sorted by application; plots are ``by_group[category[app]][start:start + count]``."""

    app: np.ndarray
    group: np.ndarray
    start: np.ndarray
    count: np.ndarray
    value: np.ndarray
    first: np.ndarray
    last: np.ndarray


def columns(catalogue: Catalogue) -> Columns:
    """Every (application, group) with a compatible plot whose nodes' full headroom fits the demand.

    Built category by category on an (application x group) grid and scattered straight
    into application order (no sort over the millions of columns).
    """
    instance = catalogue.instance
    n_plots, n_apps = len(instance.plot_ids), len(instance.app_ids)
    grids: list[tuple[np.ndarray, ...]] = []
    per_app = np.zeros(n_apps, dtype=np.int64)
    for c, key in enumerate(catalogue.group_key):
        members = np.flatnonzero(catalogue.category == c)
        groups = sorted_unique(key // max(n_plots, 1))
        if not len(groups) or not len(members):
            continue
        base = groups[None, :] * n_plots
        low = np.searchsorted(key, base + catalogue.low_rank[members][:, None])
        high = np.searchsorted(key, base + catalogue.high_rank[members][:, None])
        keep = high > low
        keep &= fits_headroom(
            instance.power[members][:, None],
            instance.power_cap,
            catalogue.group_power[groups][None, :],
        )
        keep &= fits_headroom(
            instance.water[members][:, None],
            instance.water_cap,
            catalogue.group_water[groups][None, :],
        )
        per_app[members] = keep.sum(axis=1)
        grids.append((members, groups, low, high, keep))
    first = np.cumsum(per_app) - per_app
    total = int(per_app.sum())
    app = np.repeat(np.arange(n_apps), per_app)
    group, start, count = (np.empty(total, dtype=np.int64) for _ in range(3))
    for members, groups, low, high, keep in grids:
        row, column = np.nonzero(keep)
        within = np.cumsum(keep, axis=1)[row, column] - 1
        position = first[members[row]] + within
        group[position] = groups[column]
        start[position] = low[row, column]
        count[position] = high[row, column] - low[row, column]
    return Columns(
        app=app,
        group=group,
        start=start,
        count=count,
        value=_column_values(catalogue, app, start, count),
        first=first,
        last=first + per_app,
    )


def _column_values(
    catalogue: Catalogue, app: np.ndarray, start: np.ndarray, count: np.ndarray
) -> np.ndarray:
    """Best pair value over each column's plots, or an upper bound of it when values depend on the plot."""
    value, instance = catalogue.value, catalogue.instance
    result = value.per_app[app].astype(float)
    if not len(app):
        return np.asarray(result, dtype=float)
    category = catalogue.category[app]
    if value.fit_weight or np.any(value.per_plot):
        smallest = np.empty(len(app), dtype=np.int64)
        best_plot = np.zeros(len(app))
        for c in np.unique(category):
            rows = np.flatnonzero(category == c)
            plots = catalogue.by_group[c]
            smallest[rows] = plots[start[rows]]
            per_plot = np.r_[value.per_plot[plots], -np.inf]
            edges = np.stack([start[rows], start[rows] + count[rows]], axis=1).ravel()
            best_plot[rows] = np.maximum.reduceat(per_plot, edges)[::2]
        area = instance.area[smallest]
        fit = np.where(area > 0, instance.min_ha[app] / np.maximum(area, TOLERANCE), 1.0)
        result = result + best_plot + value.fit_weight * np.maximum(fit, (area <= 0) * 1.0)
    if value.preference_weight and len(value.preference_keys):
        wishing = np.unique(value.preference_keys // max(len(instance.plot_ids), 1))
        result = result + value.preference_weight * np.isin(app, wishing)
    return np.asarray(result, dtype=float)


class Placement:
    """A feasible allocation plot by plot, with the headroom it leaves."""

    def __init__(self, catalogue: Catalogue, cols: Columns) -> None:
        instance = catalogue.instance
        self.catalogue, self.cols = catalogue, cols
        self.plot_of = np.full(len(instance.app_ids), -1, dtype=np.int64)
        self.worth = np.zeros(len(instance.app_ids))
        self.holder = np.full(len(instance.plot_ids), -1, dtype=np.int64)
        self.power_left = instance.power_cap.copy()
        self.water_left = instance.water_cap.copy()

    def place(self, app: int, plot: int, worth: float) -> None:
        """Give ``plot`` to ``app`` (worth ``worth``) and take its demand off the plot's nodes."""
        instance = self.catalogue.instance
        self.plot_of[app], self.worth[app], self.holder[plot] = plot, worth, app
        if instance.power[app] > 0:
            self.power_left[instance.power_node[plot]] -= instance.power[app]
        if instance.water[app] > 0:
            self.water_left[instance.water_node[plot]] -= instance.water[app]

    def remove(self, app: int) -> None:
        """Take ``app`` off its plot and give its demand back to the plot's nodes."""
        instance = self.catalogue.instance
        plot = int(self.plot_of[app])
        if instance.power[app] > 0:
            self.power_left[instance.power_node[plot]] += instance.power[app]
        if instance.water[app] > 0:
            self.water_left[instance.water_node[plot]] += instance.water[app]
        self.plot_of[app], self.worth[app], self.holder[plot] = -1, 0.0, -1

    def objective(self) -> float:
        """Total value of the allocation."""
        return float(self.worth.sum())

    def column_plots(self, column: int) -> np.ndarray:
        """The column's compatible plots, in area order."""
        app = self.cols.app[column]
        begin = self.cols.start[column]
        plots = self.catalogue.by_group[self.catalogue.category[app]]
        return np.asarray(plots[begin : begin + self.cols.count[column]])

    def try_column(self, column: int) -> bool:
        """Place the column's application on its best free plot of the column's group (smallest on ties)."""
        app = int(self.cols.app[column])
        plots = self.column_plots(column)
        free = plots[self.holder[plots] < 0]
        if not len(free):
            return False
        worth = pair_values(
            self.catalogue.value, self.catalogue.instance, np.full(len(free), app), free
        )
        best = int(np.argmax(worth))
        self.place(app, int(free[best]), float(worth[best]))
        return True

    def fits(self, column: np.ndarray) -> np.ndarray:
        """Whether each column's demand fits the headroom its group's nodes still have."""
        instance, cols = self.catalogue.instance, self.cols
        app, group = cols.app[column], cols.group[column]
        ok = fits_headroom(instance.power[app], self.power_left, self.catalogue.group_power[group])
        ok &= fits_headroom(instance.water[app], self.water_left, self.catalogue.group_water[group])
        return np.asarray(ok)


def greedy(placement: Placement, deadline: float) -> None:
    """Applications by value per share of headroom, each on the feasible group it fills most tightly."""
    instance, cols = placement.catalogue.instance, placement.cols
    best = np.full(len(instance.app_ids), -np.inf)
    np.maximum.at(best, cols.app, cols.value)
    typical = (
        np.median(instance.power_cap[instance.power_cap > 0])
        if (instance.power_cap > 0).any()
        else 1.0
    )
    typical_water = (
        np.median(instance.water_cap[instance.water_cap > 0])
        if (instance.water_cap > 0).any()
        else 1.0
    )
    footprint = instance.power / typical + instance.water / typical_water + 1e-3
    order = np.argsort(-best / footprint, kind="stable")
    for app in order[np.isfinite(best[order])]:
        if time.perf_counter() >= deadline:
            return
        if placement.plot_of[app] >= 0:
            continue
        own = np.arange(cols.first[app], cols.last[app])
        own = own[placement.fits(own)]
        node = placement.catalogue.group_power[cols.group[own]]
        left = np.full(len(own), np.inf)
        left[node >= 0] = placement.power_left[node[node >= 0]]
        for column in own[np.lexsort((left, -cols.value[own]))]:
            if placement.try_column(int(column)):
                break


def repack(placement: Placement, binding: np.ndarray, deadline: float) -> bool:
    """Exact knapsack re-packing of each binding substation, matched to its plots; True if anything gained."""
    catalogue, cols = placement.catalogue, placement.cols
    node_of_column = catalogue.group_power[cols.group]
    by_node = np.argsort(node_of_column, kind="stable")
    bounds = np.searchsorted(node_of_column[by_node], np.arange(len(binding) + 1))
    gained = False
    for node in np.flatnonzero(binding):
        if time.perf_counter() >= deadline:
            break
        gained |= _repack_node(placement, int(node), by_node[bounds[node] : bounds[node + 1]])
    return gained


def _repack_node(placement: Placement, node: int, at_node: np.ndarray) -> bool:
    catalogue, cols = placement.catalogue, placement.cols
    instance = catalogue.instance
    placed = np.flatnonzero(placement.plot_of >= 0)
    lifted = placed[instance.power_node[placement.plot_of[placed]] == node]
    app_of = cols.app[at_node]
    candidate = at_node[(placement.plot_of[app_of] < 0) | np.isin(app_of, lifted)]
    apps = np.unique(cols.app[candidate])
    if len(apps) <= len(lifted):
        return False
    best = np.full(len(instance.app_ids), -np.inf)
    np.maximum.at(best, cols.app[candidate], cols.value[candidate])
    value, weight = best[apps], instance.power[apps]
    keep = shortlist(value, weight, np.isin(apps, lifted))
    apps, value, weight = apps[keep], value[keep], weight[keep]
    capacity = float(placement.power_left[node] + instance.power[lifted].sum())
    chosen = apps[_knapsack(value, weight, capacity)]
    before = float(placement.worth[lifted].sum())
    if best[chosen].sum() <= before + TOLERANCE * max(abs(before), 1.0):
        return False
    previous = [
        (int(app), int(placement.plot_of[app]), float(placement.worth[app])) for app in lifted
    ]
    for app in lifted:
        placement.remove(int(app))
    after = match_columns(placement, candidate[np.isin(cols.app[candidate], chosen)])
    if (
        after > before + TOLERANCE * max(abs(before), 1.0)
        and (placement.water_left >= -TOLERANCE).all()
    ):
        return True
    for app in chosen:
        if placement.plot_of[app] >= 0:
            placement.remove(int(app))
    for app, plot, worth in previous:
        placement.place(app, plot, worth)
    return False


def match_columns(placement: Placement, usable: np.ndarray) -> float:
    """Place the columns' applications on distinct free plots by a max-value matching (most applications first)."""
    catalogue, instance = placement.catalogue, placement.catalogue.instance
    if not len(usable):
        return 0.0
    plot_lists = [placement.column_plots(int(column)) for column in usable]
    plot = np.concatenate(plot_lists)
    app = np.repeat(placement.cols.app[usable], [len(p) for p in plot_lists])
    free = placement.holder[plot] < 0
    app, plot = app[free], plot[free]
    if not len(app):
        return 0.0
    worth = pair_values(catalogue.value, instance, app, plot)
    apps, row = np.unique(app, return_inverse=True)
    plots, col = np.unique(plot, return_inverse=True)
    top = max(float(worth.max()), TOLERANCE)
    # one more application always beats any value difference; smaller plots win ties
    gain = np.zeros((len(apps), len(plots)))
    gain[row, col] = (
        2.0 + worth / top - 1e-6 * instance.area[plot] / max(float(instance.area.max()), TOLERANCE)
    )
    worth_at = np.zeros(gain.shape)
    worth_at[row, col] = worth
    total = 0.0
    for r, c in zip(*linear_sum_assignment(gain, maximize=True)):
        if gain[r, c] > 0:
            placement.place(int(apps[r]), int(plots[c]), float(worth_at[r, c]))
            total += float(worth_at[r, c])
    return total


def binding_nodes(catalogue: Catalogue, cols: Columns) -> np.ndarray:
    """Power nodes whose headroom is below the summed demand of every application that could land there."""
    instance = catalogue.instance
    n_apps = max(len(instance.app_ids), 1)
    node = catalogue.group_power[cols.group]
    real_groups = catalogue.group_power[catalogue.group_power >= 0]
    if len(real_groups) == len(sorted_unique(real_groups)):
        # one group per substation: the columns are already distinct (substation, application)
        users_node, users_app = node, cols.app
    else:
        keys = sorted_unique((node.astype(np.int64) + 1) * n_apps + cols.app)
        users_node, users_app = keys // n_apps - 1, keys % n_apps
    real = users_node >= 0
    load = np.bincount(
        users_node[real], weights=instance.power[users_app[real]], minlength=len(instance.power_cap)
    )
    return np.asarray(load > instance.power_cap + TOLERANCE * np.maximum(instance.power_cap, 1.0))


class Lagrangian:
    """Bound from pricing each substation's headroom at ``price[node]``: valid for any non-negative prices.

    ``sum(price * headroom) + sum over applications of max(0, best column value less its
    priced demand)``: the application, plot and water rows are kept or dropped (relaxed),
    so every allocation is worth at most this.
    """

    def __init__(self, catalogue: Catalogue, cols: Columns) -> None:
        instance = catalogue.instance
        self.cols = cols
        self.node = catalogue.group_power[cols.group]
        self.priced = (self.node >= 0) & (instance.power[cols.app] > 0)
        self.weight = np.where(self.priced, instance.power[cols.app], 0.0)
        self.cap = instance.power_cap
        self.starts = cols.first[cols.last > cols.first]
        self.apps = cols.app[self.starts]

    def evaluate(self, price: np.ndarray) -> tuple[float, np.ndarray]:
        """The bound at ``price`` and its subgradient (headroom less the demand the relaxation puts there)."""
        score = self.cols.value.copy()
        score[self.priced] -= price[self.node[self.priced]] * self.weight[self.priced]
        if not len(score):
            return float(price @ self.cap), self.cap.copy()
        best = np.maximum.reduceat(score, self.starts)
        gaining = best > 0
        hits = np.flatnonzero(score == np.repeat(best, np.diff(np.r_[self.starts, len(score)])))
        first = hits[np.r_[True, self.cols.app[hits][1:] != self.cols.app[hits][:-1]]]
        take = first[gaining[np.searchsorted(self.apps, self.cols.app[first])]]
        take = take[self.priced[take]]
        usage = np.bincount(self.node[take], weights=self.weight[take], minlength=len(self.cap))
        return float(price @ self.cap + best[gaining].sum()), self.cap - usage

    def start(self) -> np.ndarray:
        """One price for every substation, the one minimising the bound (the critical value density)."""
        best = (
            np.maximum.reduceat(self.cols.value, self.starts) if len(self.starts) else np.zeros(0)
        )
        weight = np.maximum.reduceat(self.weight, self.starts) if len(self.starts) else np.zeros(0)
        used = np.zeros(len(self.cap), dtype=bool)
        used[self.node[self.priced]] = True
        capacity = float(self.cap[used].sum())
        density = np.where(weight > 0, best / np.maximum(weight, TOLERANCE), np.inf)
        order = np.argsort(-density, kind="stable")
        priced = order[np.isfinite(density[order])]
        filled = np.cumsum(weight[priced])
        critical = np.searchsorted(filled, capacity, side="left")
        price = float(density[priced[critical]]) if critical < len(priced) else 0.0
        return np.full(len(self.cap), price)


def lagrangian_bound(
    catalogue: Catalogue, cols: Columns, target: float, deadline: float
) -> tuple[float, np.ndarray]:
    """Minimise the substation-price bound by subgradient steps (Polyak steps towards ``target``) until the deadline.

    Returns the best bound and its prices (value per unit of each substation's headroom).
    """
    relaxation = Lagrangian(catalogue, cols)
    price = relaxation.start()
    best, best_price = math.inf, price
    step = 1.0
    stalled = 0
    for _ in range(_BOUND_ITERATIONS):
        value, slope = relaxation.evaluate(price)
        if not math.isfinite(best) or value < best - 1e-12 * abs(best):
            best, best_price, stalled = value, price, 0
        else:
            stalled += 1
            if stalled >= 3:
                step, stalled = step / 2, 0
        norm = float(slope @ slope)
        if time.perf_counter() >= deadline or norm <= 0 or step < 1e-4:
            return best, best_price
        price = np.maximum(price - step * max(value - target, 0.0) / norm * slope, 0.0)
    return best, best_price
