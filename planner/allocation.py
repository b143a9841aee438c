"""Plot allocation: match investor applications to zone plots under size, zoning, rail and utility-headroom rules."""

from __future__ import annotations

import csv
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment

from planner.highs import silent_highs

__all__ = [
    "AllocationInputError",
    "AllocationResult",
    "DEFAULT_WEIGHTS",
    "OBJECTIVES",
    "pair_rules",
    "read_applications_csv",
    "solve",
]

OBJECTIVES = ("investment", "jobs", "count", "weighted")
METHODS = ("milp", "greedy")
PLOT_COLUMNS = ("plot_id", "area_ha", "rail", "node", "sectors")
APPLICATION_COLUMNS = (
    "app_id",
    "min_ha",
    "max_ha",
    "sector",
    "rail_need",
    "power_kw",
    "invest",
    "jobs",
)
OPTIONAL_APPLICATION_NUMBERS = ("water_m3d", "hazard", "priority")
CAPACITY_COLUMNS = ("node", "power_kw")
DEFAULT_WEIGHTS: Mapping[str, float] = {
    "invest": 0.35,
    "jobs": 0.25,
    "priority": 0.10,
    "fit": 0.10,
    "distance": 0.10,
    "preference": 0.10,
}
_TOLERANCE = 1e-9
_PROMISING_PER_APPLICATION = 20
_TRUE_WORDS = frozenset({"true", "yes", "y", "1", "t"})
_FALSE_WORDS = frozenset({"false", "no", "n", "0", "f"})
_STATIC_STAGES = ("size", "sector", "rail", "hazard", "power", "water")


class AllocationInputError(ValueError):
    """Input violates the allocation contract; the message names the table, column and rows."""


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


@dataclass
class _Instance:
    """Validated inputs as positional arrays; utility nodes are indices into ``node_names`` (-1: none)."""

    app_ids: np.ndarray
    min_ha: np.ndarray
    max_ha: np.ndarray
    sector: np.ndarray
    sector_code: np.ndarray
    rail_need: np.ndarray
    power: np.ndarray
    water: np.ndarray
    hazard: np.ndarray
    plot_ids: np.ndarray
    area: np.ndarray
    rail: np.ndarray
    power_node: np.ndarray
    water_node: np.ndarray
    hazard_ok: np.ndarray
    any_sector: np.ndarray
    allowed_sector_keys: np.ndarray
    sector_vocabulary: int
    node_names: np.ndarray
    power_cap: np.ndarray
    water_cap: np.ndarray


@dataclass
class _Value:
    """Pair value = ``per_app[a] + fit_weight * min_ha[a] / area[p] + per_plot[p] + preference_weight * [p preferred by a]``."""

    per_app: np.ndarray
    per_plot: np.ndarray
    fit_weight: float
    preference_weight: float
    preference_keys: np.ndarray


@dataclass
class _Pairs:
    """Statically compatible (application, plot) pairs, grouped by application in plot (area, id) order."""

    app: np.ndarray
    plot: np.ndarray
    value: np.ndarray
    start: np.ndarray
    end: np.ndarray
    stage_counts: dict[str, np.ndarray]
    connected_app: np.ndarray
    connected_plot: np.ndarray


# ----------------------------------------------------------------------------- validation


def _require_columns(frame: object, columns: tuple[str, ...], table: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise AllocationInputError(
            f"{table}: expected a pandas DataFrame, got {type(frame).__name__}"
        )
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise AllocationInputError(f"{table}: missing column(s) {', '.join(missing)}")


def _describe_rows(frame: pd.DataFrame, mask: np.ndarray, id_column: str) -> str:
    rows = np.flatnonzero(mask)
    shown = ", ".join(f"row {row} ({id_column} {frame[id_column].iloc[row]!r})" for row in rows[:5])
    return shown + (f" and {len(rows) - 5} more" if len(rows) > 5 else "")


def _numbers(
    frame: pd.DataFrame, column: str, table: str, id_column: str, *, default: float | None = None
) -> np.ndarray:
    """Non-negative finite numbers; nulls (or a missing column) take ``default``, None meaning required."""
    if column not in frame.columns:
        return np.full(len(frame), np.nan if default is None else default, dtype=float)
    raw = frame[column]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float, na_value=np.nan, copy=True)
    null = raw.isna().to_numpy()
    for problem, mask in (
        ("is not a number", np.isnan(values) & ~null),
        ("is empty", null if default is None else np.zeros_like(null)),
        ("is negative", values < 0),
        ("is infinite", np.isinf(values)),
    ):
        if mask.any():
            raise AllocationInputError(
                f"{table}: column {column} {problem} at {_describe_rows(frame, mask, id_column)}"
            )
    values[null] = default if default is not None else np.nan
    return values


def _flags(frame: pd.DataFrame, column: str, table: str, id_column: str) -> np.ndarray:
    raw = frame[column]
    if raw.dtype == bool:
        return raw.to_numpy()
    words = raw.map(_flag_word)
    bad = ~words.isin(_TRUE_WORDS | _FALSE_WORDS).to_numpy()
    if bad.any():
        raise AllocationInputError(
            f"{table}: column {column} is not yes/no at {_describe_rows(frame, bad, id_column)}"
        )
    return words.isin(_TRUE_WORDS).to_numpy()


def _flag_word(value: object) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (bool, np.bool_, int, np.integer, float, np.floating)):
        return str(int(value)) if float(value) in (0.0, 1.0) else str(value)
    return str(value).strip().lower()


def _ids(frame: pd.DataFrame, column: str, table: str) -> np.ndarray:
    ids = frame[column]
    null = ids.isna().to_numpy()
    if null.any():
        raise AllocationInputError(
            f"{table}: column {column} is empty at rows {np.flatnonzero(null)[:5].tolist()}"
        )
    duplicated = ids.duplicated(keep=False).to_numpy()
    if duplicated.any():
        raise AllocationInputError(
            f"{table}: duplicate {column} {sorted(map(str, ids[duplicated].unique()))[:5]}"
        )
    return ids.to_numpy(dtype=object)


def _node_key(value: object) -> str | None:
    """Node id as text, so 3, 3.0 (an int column with nulls) and '3' name the same substation."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value).strip() or None


def _node_keys(values: pd.Series) -> pd.Series:
    return values.map(_node_key).astype(object)


def _text(frame: pd.DataFrame, column: str, table: str, id_column: str) -> pd.Series:
    values = frame[column]
    empty = (values.isna() | (values.astype(str).str.strip() == "")).to_numpy()
    if empty.any():
        raise AllocationInputError(
            f"{table}: column {column} is empty at {_describe_rows(frame, empty, id_column)}"
        )
    return values.astype(str).str.strip()


def _capacities(
    capacities: object, node_names: pd.Index
) -> tuple[pd.Index, np.ndarray, np.ndarray, bool]:
    """Headroom per node over the union of listed and referenced nodes; unlisted nodes get zero."""
    _require_columns(capacities, CAPACITY_COLUMNS, "capacities")
    assert isinstance(capacities, pd.DataFrame)
    capacities = capacities.reset_index(drop=True)
    names = _node_keys(capacities["node"])
    if names.isna().any():
        raise AllocationInputError(
            f"capacities: column node is empty at rows {np.flatnonzero(names.isna().to_numpy())[:5].tolist()}"
        )
    if names.duplicated().any():
        raise AllocationInputError(
            f"capacities: duplicate node {sorted(names[names.duplicated()].unique())[:5]}"
        )
    water_modelled = "water_m3d" in capacities.columns
    all_names = pd.Index(
        pd.unique(pd.concat([names, pd.Series(node_names, dtype=object)], ignore_index=True))
    )
    power = np.zeros(len(all_names))
    water = np.zeros(len(all_names))
    rows = all_names.get_indexer(names)
    power[rows] = _numbers(capacities, "power_kw", "capacities", "node", default=0.0)
    if water_modelled:
        water[rows] = _numbers(capacities, "water_m3d", "capacities", "node", default=0.0)
    return all_names, power, water, water_modelled


def _sector_index(
    sectors: pd.Series, app_sectors: pd.Series
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Allowed (plot, sector) pairs as sorted keys ``plot * vocabulary + code`` for vectorised lookup."""
    exploded = sectors.astype(str).str.split(",").explode()
    codes = exploded.str.strip().str.upper()
    plot_row = exploded.index.to_numpy()
    wildcard = (codes == "*").to_numpy()
    any_sector = np.zeros(len(sectors), dtype=bool)
    any_sector[plot_row[wildcard]] = True
    app_codes = app_sectors.str.upper()
    named = ~wildcard & (codes != "").to_numpy()
    vocabulary = pd.Index(pd.unique(pd.concat([codes[named], app_codes], ignore_index=True)))
    keys = plot_row[named].astype(np.int64) * len(vocabulary) + vocabulary.get_indexer(codes[named])
    return np.unique(keys), any_sector, vocabulary.get_indexer(app_codes), len(vocabulary)


def _node_positions(node_names: pd.Index, names: pd.Series) -> np.ndarray:
    positions = np.full(len(names), -1, dtype=np.int64)
    present = names.notna().to_numpy()
    positions[present] = node_names.get_indexer(names[present])
    return positions


def _prepare(plots: object, applications: object, capacities: object) -> _Instance:
    _require_columns(plots, PLOT_COLUMNS, "plots")
    _require_columns(applications, APPLICATION_COLUMNS, "applications")
    assert isinstance(plots, pd.DataFrame) and isinstance(applications, pd.DataFrame)
    plots = plots.reset_index(drop=True)
    applications = applications.reset_index(drop=True)
    min_ha = _numbers(applications, "min_ha", "applications", "app_id")
    max_ha = _numbers(applications, "max_ha", "applications", "app_id")
    if (min_ha > max_ha).any():
        raise AllocationInputError(
            f"applications: min_ha > max_ha at {_describe_rows(applications, min_ha > max_ha, 'app_id')}"
        )
    power_names = _node_keys(plots["node"])
    water_names = (
        _node_keys(plots["water_node"])
        if "water_node" in plots.columns
        else pd.Series([None] * len(plots), dtype=object)
    )
    referenced = pd.unique(
        pd.concat([power_names.dropna(), water_names.dropna()], ignore_index=True)
    )
    node_names, power_cap, water_cap, water_modelled = _capacities(capacities, pd.Index(referenced))
    sector = _text(applications, "sector", "applications", "app_id")
    allowed_keys, any_sector, sector_code, vocabulary = _sector_index(
        _text(plots, "sectors", "plots", "plot_id"), sector
    )
    no_water = np.zeros(len(applications))
    return _Instance(
        app_ids=_ids(applications, "app_id", "applications"),
        min_ha=min_ha,
        max_ha=max_ha,
        sector=sector.to_numpy(dtype=object),
        sector_code=sector_code,
        rail_need=_flags(applications, "rail_need", "applications", "app_id"),
        power=_numbers(applications, "power_kw", "applications", "app_id"),
        water=_numbers(applications, "water_m3d", "applications", "app_id", default=0.0)
        if water_modelled
        else no_water,
        hazard=_numbers(applications, "hazard", "applications", "app_id", default=0.0),
        plot_ids=_ids(plots, "plot_id", "plots"),
        area=_numbers(plots, "area_ha", "plots", "plot_id"),
        rail=_flags(plots, "rail", "plots", "plot_id"),
        power_node=_node_positions(node_names, power_names),
        water_node=_node_positions(node_names, water_names),
        hazard_ok=_numbers(plots, "hazard_ok", "plots", "plot_id", default=np.inf),
        any_sector=any_sector,
        allowed_sector_keys=allowed_keys,
        sector_vocabulary=vocabulary,
        node_names=node_names.to_numpy(dtype=object),
        power_cap=power_cap,
        water_cap=water_cap,
    )


# ----------------------------------------------------------------------------- objective


def _value_model(
    plots: pd.DataFrame,
    applications: pd.DataFrame,
    objective: str,
    weights: Mapping[str, float] | None,
) -> _Value:
    if objective not in OBJECTIVES:
        raise AllocationInputError(
            f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}"
        )
    if weights is not None and objective != "weighted":
        raise AllocationInputError("weights apply only to objective='weighted'")
    plots = plots.reset_index(drop=True)
    applications = applications.reset_index(drop=True)
    invest = _numbers(applications, "invest", "applications", "app_id")
    jobs = _numbers(applications, "jobs", "applications", "app_id")
    flat = {"investment": invest, "jobs": jobs, "count": np.ones(len(applications))}
    if objective in flat:
        return _Value(flat[objective], np.zeros(len(plots)), 0.0, 0.0, np.empty(0, dtype=np.int64))
    mix = _weights(weights)
    priority = _numbers(applications, "priority", "applications", "app_id", default=0.0)
    distance = _numbers(plots, "dist_m", "plots", "plot_id", default=0.0)
    return _Value(
        per_app=mix["invest"] * _share(invest)
        + mix["jobs"] * _share(jobs)
        + mix["priority"] * _share(priority),
        per_plot=mix["distance"] * (1.0 - _share(distance)),
        fit_weight=mix["fit"],
        preference_weight=mix["preference"] if "plot_pref" in applications.columns else 0.0,
        preference_keys=_preference_keys(applications, plots),
    )


def _weights(weights: Mapping[str, float] | None) -> dict[str, float]:
    unknown = sorted(set(weights or {}) - set(DEFAULT_WEIGHTS))
    if unknown:
        raise AllocationInputError(f"unknown weight(s) {unknown}; known: {sorted(DEFAULT_WEIGHTS)}")
    mix = {**DEFAULT_WEIGHTS, **(weights or {})}
    bad = {
        key: value
        for key, value in mix.items()
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0)
    }
    if bad:
        raise AllocationInputError(f"weights must be finite and non-negative: {bad}")
    return {key: float(value) for key, value in mix.items()}


def _share(values: np.ndarray) -> np.ndarray:
    top = values.max(initial=0.0)
    return values / top if top > 0 else np.zeros_like(values)


def _preference_keys(applications: pd.DataFrame, plots: pd.DataFrame) -> np.ndarray:
    """Sorted keys ``app * n_plots + plot`` of preferred pairs from comma-separated ``plot_pref``."""
    if "plot_pref" not in applications.columns:
        return np.empty(0, dtype=np.int64)
    wanted = applications["plot_pref"].dropna().astype(str).str.split(",").explode().str.strip()
    wanted = wanted[wanted != ""]
    plot_row = pd.Index(plots["plot_id"].astype(str)).get_indexer(wanted)
    known = plot_row >= 0
    return np.unique(wanted.index.to_numpy()[known].astype(np.int64) * len(plots) + plot_row[known])


def _pair_values(
    value: _Value, instance: _Instance, app: np.ndarray, plot: np.ndarray
) -> np.ndarray:
    result = value.per_app[app] + value.per_plot[plot]
    if value.fit_weight:
        area = instance.area[plot]
        result = result + value.fit_weight * np.where(
            area > 0, instance.min_ha[app] / np.maximum(area, _TOLERANCE), 1.0
        )
    if value.preference_weight and len(value.preference_keys):
        preferred = np.isin(
            app.astype(np.int64) * len(instance.plot_ids) + plot, value.preference_keys
        )
        result = result + value.preference_weight * preferred
    return result


# ----------------------------------------------------------------------------- compatible pairs


def _plot_order(instance: _Instance) -> np.ndarray:
    tie_break = pd.Series(instance.plot_ids).astype(str).rank(method="first").to_numpy()
    return np.lexsort((tie_break, instance.area))


def _compatible_pairs(instance: _Instance, value: _Value) -> _Pairs:
    """Every (application, plot) pair passing the static rules, plus per-rule survivor counts for reasons."""
    order = _plot_order(instance)
    sorted_area = instance.area[order]
    low = np.searchsorted(sorted_area, instance.min_ha - _TOLERANCE, side="left")
    lengths = np.maximum(
        np.searchsorted(sorted_area, instance.max_ha + _TOLERANCE, side="right") - low, 0
    )
    app = np.repeat(np.arange(len(instance.app_ids)), lengths)
    offsets = np.repeat(np.cumsum(lengths) - lengths, lengths)
    plot = order[np.arange(len(app)) - offsets + np.repeat(low, lengths)]
    counts: dict[str, np.ndarray] = {}
    passing = np.ones(len(app), dtype=bool)
    for name, mask in _static_rules(instance, app, plot).items():
        passing &= mask
        counts[name] = np.bincount(app[passing], minlength=len(instance.app_ids))
    connected_app, connected_plot = app[passing], plot[passing]
    fits = _fits(
        instance.power[connected_app], instance.power_cap, instance.power_node[connected_plot]
    )
    fits &= _fits(
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


def _static_rules(instance: _Instance, app: np.ndarray, plot: np.ndarray) -> dict[str, np.ndarray]:
    """Whether each (application, plot) pair passes each static rule, in ``_STATIC_STAGES`` order."""
    area = instance.area[plot]
    return {
        "size": (area >= instance.min_ha[app] - _TOLERANCE)
        & (area <= instance.max_ha[app] + _TOLERANCE),
        "sector": _sector_allowed(instance, app, plot),
        "rail": ~instance.rail_need[app] | instance.rail[plot],
        "hazard": instance.hazard[app] <= instance.hazard_ok[plot],
        "power": (instance.power[app] == 0) | (instance.power_node[plot] >= 0),
        "water": (instance.water[app] == 0) | (instance.water_node[plot] >= 0),
    }


def _pairs(
    instance: _Instance,
    value: _Value,
    app: np.ndarray,
    plot: np.ndarray,
    counts: dict[str, np.ndarray],
    connected_app: np.ndarray,
    connected_plot: np.ndarray,
) -> _Pairs:
    applications = np.arange(len(instance.app_ids))
    return _Pairs(
        app=app,
        plot=plot,
        value=_pair_values(value, instance, app, plot),
        start=np.searchsorted(app, applications, side="left"),
        end=np.searchsorted(app, applications, side="right"),
        stage_counts=counts,
        connected_app=connected_app,
        connected_plot=connected_plot,
    )


def _sector_allowed(instance: _Instance, app: np.ndarray, plot: np.ndarray) -> np.ndarray:
    code = instance.sector_code[app]
    keys = plot.astype(np.int64) * instance.sector_vocabulary + code
    allowed = instance.allowed_sector_keys
    if not len(allowed):
        return instance.any_sector[plot]
    listed = allowed[np.minimum(np.searchsorted(allowed, keys), len(allowed) - 1)] == keys
    return instance.any_sector[plot] | listed


def _fits(demand: np.ndarray, left: np.ndarray, node: np.ndarray) -> np.ndarray:
    """Whether each demand fits the headroom left at its node; zero demand always fits, even with no node."""
    available = (
        np.where(node >= 0, left[np.maximum(node, 0)], 0.0) if len(left) else np.zeros(len(node))
    )
    return (demand == 0) | (available >= demand - _TOLERANCE * np.maximum(demand, 1.0))


def _restrict(pairs: _Pairs, keep: np.ndarray) -> _Pairs:
    app = pairs.app[keep]
    applications = np.arange(len(pairs.start))
    return _Pairs(
        app=app,
        plot=pairs.plot[keep],
        value=pairs.value[keep],
        start=np.searchsorted(app, applications, side="left"),
        end=np.searchsorted(app, applications, side="right"),
        stage_counts=pairs.stage_counts,
        connected_app=pairs.connected_app,
        connected_plot=pairs.connected_plot,
    )


def _binding_nodes(
    instance: _Instance,
    pairs: _Pairs,
    demand: np.ndarray,
    cap: np.ndarray,
    node_of_plot: np.ndarray,
) -> np.ndarray:
    """Nodes whose headroom is below the summed demand of every application that could land there."""
    node = node_of_plot[pairs.plot]
    users = (
        np.unique(np.stack([node, pairs.app]), axis=1)
        if len(node)
        else np.empty((2, 0), dtype=np.int64)
    )
    users = users[:, (users[0] >= 0) & (demand[users[1]] > 0)]
    load = np.bincount(users[0], weights=demand[users[1]], minlength=len(cap))
    return load > cap + _TOLERANCE * np.maximum(cap, 1.0)


def _prune_interchangeable(instance: _Instance, pairs: _Pairs, group_of_plot: np.ndarray) -> _Pairs:
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
    return _restrict(pairs, keep)


def _competitors(instance: _Instance, app: np.ndarray, group: np.ndarray) -> np.ndarray:
    """For each (application, group) run: applications in that group whose [min_ha, max_ha] overlaps, itself included."""
    limit = np.empty(len(app), dtype=np.int64)
    for g in np.unique(group):
        rows = np.flatnonzero(group == g)
        members = app[rows]
        lows, highs = np.sort(instance.min_ha[members]), np.sort(instance.max_ha[members])
        ends_before = np.searchsorted(highs, instance.min_ha[members] - _TOLERANCE, side="left")
        starts_after = len(members) - np.searchsorted(
            lows, instance.max_ha[members] + _TOLERANCE, side="right"
        )
        limit[rows] = len(members) - ends_before - starts_after
    return limit


# ----------------------------------------------------------------------------- allocation state


class _State:
    """A feasible partial allocation with the headroom it leaves."""

    def __init__(self, instance: _Instance, pairs: _Pairs) -> None:
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
        free &= _fits(
            np.full(len(index), self.instance.power[app]),
            self.power_left,
            self.instance.power_node[plot],
        )
        free &= _fits(
            np.full(len(index), self.instance.water[app]),
            self.water_left,
            self.instance.water_node[plot],
        )
        return index[free]

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
                & (self.pairs.value[index] >= self.pairs.value[current] - _TOLERANCE)
            ]
            if len(better):
                self.remove(app)
                self.place(app, int(better[0]))

    def fill(self, apps: np.ndarray) -> None:
        """Give each listed unallocated application its best still-feasible pair (first best = smallest plot)."""
        for app in apps:
            if self.chosen[app] < 0:
                options = self.options(app)
                if len(options):
                    self.place(app, options[np.argmax(self.pairs.value[options])])


# ----------------------------------------------------------------------------- solvers


def _greedy_first_come(instance: _Instance, pairs: _Pairs) -> _State:
    """The operator's practice: applications in input order each take the smallest feasible plot."""
    state = _State(instance, pairs)
    for app in range(len(instance.app_ids)):
        options = state.options(app)
        if len(options):
            state.place(app, options[0])
    return state


def _best_values(instance: _Instance, pairs: _Pairs) -> np.ndarray:
    best = np.full(len(instance.app_ids), -np.inf)
    np.maximum.at(best, pairs.app, pairs.value)
    return best


def _value_density_order(instance: _Instance, pairs: _Pairs) -> np.ndarray:
    """Applications by value per share of the scarcest headroom they consume, best first."""
    best = _best_values(instance, pairs)
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


def _heuristic(instance: _Instance, pairs: _Pairs, deadline: float) -> _State:
    """Greedy by value density, then swap-based local search until no move gains or time runs out."""
    state = _State(instance, pairs)
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


def _swap_in(state: _State, app: int) -> bool:
    """Place ``app`` by evicting one less valuable application, then re-place the evicted one if possible."""
    move = _best_eviction(state, app)
    if move is None:
        return False
    pair, victim = move
    state.remove(victim)
    state.place(app, pair)
    state.fill(np.array([victim]))
    return True


def _best_eviction(state: _State, app: int) -> tuple[int, int] | None:
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
        if gain <= _TOLERANCE:
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
    instance: _Instance, state: _State, app: int, plot: int, victim: int, victim_plot: int
) -> bool:
    for demand, left, node_of in (
        (instance.power, state.power_left, instance.power_node),
        (instance.water, state.water_left, instance.water_node),
    ):
        if demand[app] == 0:
            continue
        node = node_of[plot]
        freed = demand[victim] if node_of[victim_plot] == node else 0.0
        if left[node] + freed < demand[app] - _TOLERANCE * max(demand[app], 1.0):
            return False
    return True


def _assignment(instance: _Instance, pairs: _Pairs) -> _State:
    """Exact max-value matching when no headroom can bind (linear_sum_assignment on the compatible pairs)."""
    state = _State(instance, pairs)
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
    instance: _Instance, pairs: _Pairs, binding: np.ndarray
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


def _fitting_counts(instance: _Instance, pairs: _Pairs, node: np.ndarray) -> np.ndarray:
    """Most applications each node can host: count of its smallest demands whose sum fits the headroom."""
    limit = np.full(len(instance.power_cap), np.inf)
    at_node = node >= 0
    users = np.unique(np.stack([node[at_node], pairs.app[at_node]]), axis=1)
    for n in np.unique(users[0]):
        demand = np.sort(instance.power[users[1, users[0] == n]])
        limit[n] = np.searchsorted(
            np.cumsum(demand), instance.power_cap[n] * (1 + _TOLERANCE), side="right"
        )
    return limit


def _model(
    instance: _Instance, pairs: _Pairs, power_binding: np.ndarray, water_binding: np.ndarray
) -> tuple[sp.csc_matrix, np.ndarray]:
    """Constraint matrix and row upper bounds over the pair variables."""
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
    offset, triplets, uppers = 0, [], []
    for row, column, value, bound in families:
        triplets.append((row + offset, column, value))
        uppers.append(bound)
        offset += len(bound)
    rows, columns, values = (np.concatenate(part) for part in zip(*triplets))
    matrix = sp.csc_matrix((values, (rows, columns)), shape=(offset, len(pairs.app)))
    return matrix, np.concatenate(uppers)


def _pass_model(
    highs, matrix: sp.csc_matrix, upper: np.ndarray, cost: np.ndarray, integer: bool
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
) -> tuple[np.ndarray, float]:
    """LP relaxation over all pairs by pricing; returns reduced costs and the Lagrangian bound they prove.

    For any row prices ``y >= 0`` and ``rc = cost - A^T y``, every allocation ``x``
    satisfies ``cost @ x <= upper @ y + rc @ x``, so ``upper @ y + sum(max(rc, 0))``
    bounds the optimum, and it is tight once no column prices out.
    """
    highs = silent_highs()
    columns = np.unique(initial)
    _pass_model(highs, matrix[:, columns], upper, cost[columns], integer=False)
    in_lp = np.zeros(len(cost), dtype=bool)
    in_lp[columns] = True
    while True:
        highs.run()
        prices = np.maximum(np.asarray(highs.getSolution().row_dual), 0.0)
        reduced = cost - matrix.T @ prices
        bound = float(upper @ prices + reduced[reduced > 0].sum())
        entering = np.flatnonzero(~in_lp & (reduced > 1e-9))
        if not len(entering) or time.perf_counter() >= deadline:
            return reduced, bound
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


def _representatives(pairs: _Pairs, group_of_plot: np.ndarray) -> np.ndarray:
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


def _milp(
    instance: _Instance,
    pairs: _Pairs,
    binding: tuple[np.ndarray, np.ndarray],
    group_of_plot: np.ndarray,
    warm: _State,
    limits: tuple[float | None, float],
    on_progress: Callable[[float, float, float], None] | None,
    started: float,
) -> tuple[_State, str, float]:
    """Price out the LP, drop pairs that cannot beat the warm start, and let HiGHS finish the rest."""
    time_limit, mip_gap = limits
    # leave a little of the budget for rebuilding the allocation and its reasons
    deadline = (
        started + time_limit - min(1.0, 0.05 * time_limit) if time_limit is not None else math.inf
    )
    matrix, upper = _model(instance, pairs, *binding)
    # tenge-sized costs (1e10) wreck HiGHS's tolerances; solve in units of the largest pair value
    scale = max(float(pairs.value.max(initial=0.0)), _TOLERANCE)
    cost = pairs.value / scale
    reduced, bound = _column_generation(
        matrix,
        upper,
        cost,
        np.r_[_representatives(pairs, group_of_plot), warm.chosen[warm.chosen >= 0]],
        deadline,
    )
    incumbent = warm.objective() / scale
    best = warm
    if on_progress is not None:
        on_progress(time.perf_counter() - started, warm.objective(), bound * scale)
    # first a quick MILP on the pairs the LP finds attractive (price-and-branch: a heuristic), then the exact one
    for stage in ("promising", "exact"):
        if _gap(incumbent, bound) <= mip_gap or time.perf_counter() >= deadline:
            break
        if stage == "promising":
            columns = np.argsort(-reduced)[: _PROMISING_PER_APPLICATION * len(instance.app_ids)]
            stage_deadline = time.perf_counter() + (deadline - time.perf_counter()) / 3
        else:
            # a pair with reduced cost below -(bound - incumbent) cannot be part of a better allocation
            columns = np.flatnonzero(reduced >= incumbent - bound - 1e-7)
            stage_deadline = deadline
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
            return best, status, _gap(incumbent, proven)
    return (
        best,
        "optimal" if _gap(incumbent, bound) <= mip_gap else "time_limit",
        _gap(incumbent, bound),
    )


def _solve_subset(
    instance: _Instance,
    pairs: _Pairs,
    model: tuple[sp.csc_matrix, np.ndarray, np.ndarray],
    columns: np.ndarray,
    warm: _State,
    limits: tuple[float, float],
    progress: Callable[[object], None] | None,
) -> tuple[_State, float, str]:
    """HiGHS MILP over a subset of pair columns, warm-started; returns the allocation, HiGHS's dual bound and status."""
    import highspy

    matrix, upper, cost = model
    deadline, mip_gap = limits
    highs = silent_highs()
    _pass_model(highs, matrix[:, columns], upper, cost[columns], integer=True)
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
    state.fill(np.argsort(-_best_values(instance, pairs), kind="stable"))
    status = highs.getModelStatus()
    label = "optimal" if status == highspy.HighsModelStatus.kOptimal else "time_limit"
    dual = highs.getInfo().mip_dual_bound
    return state, dual if math.isfinite(dual) else math.inf, label


def _state_from_solution(instance: _Instance, pairs: _Pairs, chosen: np.ndarray) -> _State:
    """Rebuild an allocation from solver columns, re-checking every rule so solver tolerances cannot leak."""
    state = _State(instance, pairs)
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
) -> Callable[[object], None]:
    """HiGHS callback reporting (elapsed, objective, proven bound) in caller units at most twice a second.

    On a heuristic column subset HiGHS's own bound proves nothing, so only the Lagrangian one is reported.
    """
    last = [-1.0]

    def relay(event) -> None:
        now = time.perf_counter() - started
        if now - last[0] >= 0.5:
            last[0] = now
            primal = max(event.data_out.mip_primal_bound, ceiling[0])
            bound = _proven_bound(event.data_out.mip_dual_bound, ceiling) if exact else ceiling[1]
            on_progress(now, primal * scale, bound * scale)

    return relay


def _gap(objective: float, bound: float) -> float:
    if not math.isfinite(bound):
        return math.inf
    return max(bound - objective, 0.0) / max(abs(objective), _TOLERANCE)


# ----------------------------------------------------------------------------- reasons


def _amount(value: float) -> str:
    value = max(value, 0.0)
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}".rstrip("0").rstrip(".")


def _size_range(instance: _Instance, app: int) -> str:
    low, high = instance.min_ha[app], instance.max_ha[app]
    return f"{_amount(low)} ha" if low == high else f"{_amount(low)}–{_amount(high)} ha"


def _qualifier(instance: _Instance, stage: str, app: int) -> str:
    return {
        "sector": f" zoned for sector {instance.sector[app]}",
        "rail": " with rail access",
        "hazard": f" allowing hazard class {_amount(instance.hazard[app])}",
        "power": " with a power connection",
        "water": " with a water connection",
    }[stage]


def _static_reason(instance: _Instance, pairs: _Pairs, app: int) -> str | None:
    """Name the rules that leave no plot at all, in the order a planner would check them."""
    qualifiers: list[str] = []
    previous = None
    for stage in _STATIC_STAGES:
        survivors = pairs.stage_counts[stage][app]
        if previous is not None and survivors < previous:
            qualifiers.append(_qualifier(instance, stage, app))
        if survivors == 0:
            return f"no plot of {_size_range(instance, app)}" + "".join(qualifiers)
        previous = survivors
    if pairs.stage_counts["headroom"][app] == 0:
        low, high = np.searchsorted(pairs.connected_app, [app, app + 1])
        return _headroom_reason(
            instance,
            app,
            pairs.connected_plot[low:high],
            (instance.power_cap, instance.water_cap),
            "headroom",
        )
    return None


def _headroom_reason(
    instance: _Instance, app: int, plots: np.ndarray, left: tuple[np.ndarray, np.ndarray], word: str
) -> str:
    power_left, water_left = left
    power_short = ~_fits(
        np.full(len(plots), instance.power[app]), power_left, instance.power_node[plots]
    )
    water_short = ~_fits(
        np.full(len(plots), instance.water[app]), water_left, instance.water_node[plots]
    )
    if power_short.all():
        return _shortage(
            instance,
            "substation",
            instance.power_node[plots],
            power_left,
            f"{word} {{}} kW < {_amount(instance.power[app])} kW needed",
        )
    if water_short.all():
        return _shortage(
            instance,
            "water node",
            instance.water_node[plots],
            water_left,
            f"{word} {{}} m³/d < {_amount(instance.water[app])} m³/d needed",
        )
    return f"no fitting plot has both power and water {word}"


def _shortage(
    instance: _Instance, kind: str, nodes: np.ndarray, left: np.ndarray, template: str
) -> str:
    nodes = np.unique(nodes)
    nodes = nodes[np.argsort(-left[nodes], kind="stable")]
    best = _amount(left[nodes[0]])
    if len(nodes) == 1:
        return f"{kind} {instance.node_names[nodes[0]]} " + template.format(best)
    names = ", ".join(str(name) for name in instance.node_names[nodes[:3]]) + (
        f" and {len(nodes) - 3} more" if len(nodes) > 3 else ""
    )
    return f"{kind}s {names} " + template.format(f"at most {best}")


def _competition_reason(
    instance: _Instance, pairs: _Pairs, state: _State, app: int, blame: str
) -> str:
    """Why a statically placeable application is out: plots taken, headroom used up, or no value."""
    plots = pairs.plot[pairs.start[app] : pairs.end[app]]
    free = plots[state.holder[plots] < 0]
    if not len(free):
        return f"every fitting plot went to {blame}"
    fitting = _fits(
        np.full(len(free), instance.power[app]), state.power_left, instance.power_node[free]
    )
    fitting &= _fits(
        np.full(len(free), instance.water[app]), state.water_left, instance.water_node[free]
    )
    if not fitting.any():
        return _headroom_reason(
            instance, app, free, (state.power_left, state.water_left), "headroom left"
        )
    return f"plot {instance.plot_ids[free[fitting][0]]} still fits, but placing the application adds no value to the objective"


def _reasons(instance: _Instance, pairs: _Pairs, state: _State, blame: str) -> list[str | None]:
    reasons: list[str | None] = [None] * len(instance.app_ids)
    for app in np.flatnonzero(state.chosen < 0):
        reasons[app] = _static_reason(instance, pairs, app) or _competition_reason(
            instance, pairs, state, app, blame
        )
    return reasons


# ----------------------------------------------------------------------------- public API


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
    instance = _prepare(plots, applications, capacities)
    pairs = _compatible_pairs(instance, _value_model(plots, applications, objective, weights))
    if method == "greedy":
        state, status, gap, used = (
            _greedy_first_come(instance, pairs),
            "heuristic",
            math.nan,
            "greedy",
        )
        blame = "an earlier application"
    else:
        state, status, gap, used = _optimise(
            instance, pairs, (time_limit, mip_gap), on_progress, started
        )
        state.prefer_small_plots()
        blame = "a higher-value application"
    plot_ids = [
        instance.plot_ids[state.pairs.plot[pair]] if pair >= 0 else None for pair in state.chosen
    ]
    assignments = pd.DataFrame(
        {
            "app_id": pd.Series(instance.app_ids, dtype=object),
            "plot_id": pd.Series(plot_ids, dtype=object),
            "reason": pd.Series(_reasons(instance, pairs, state, blame), dtype=object),
        }
    )
    return AllocationResult(
        assignments, state.objective(), status, gap, used, time.perf_counter() - started
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
    instance = _prepare(plots, applications, capacities)
    app = np.repeat(np.arange(len(instance.app_ids)), len(instance.plot_ids))
    plot = np.tile(np.arange(len(instance.plot_ids)), len(instance.app_ids))
    rules = _static_rules(instance, app, plot)
    rules["power_headroom"] = _fits(
        instance.power[app], instance.power_cap, instance.power_node[plot]
    )
    rules["water_headroom"] = _fits(
        instance.water[app], instance.water_cap, instance.water_node[plot]
    )
    return pd.DataFrame(
        {"app_id": instance.app_ids[app], "plot_id": instance.plot_ids[plot], **rules}
    )


def _optimise(
    instance: _Instance,
    pairs: _Pairs,
    limits: tuple[float | None, float],
    on_progress: Callable[[float, float, float], None] | None,
    started: float,
) -> tuple[_State, str, float, str]:
    power_binding = _binding_nodes(
        instance, pairs, instance.power, instance.power_cap, instance.power_node
    )
    water_binding = _binding_nodes(
        instance, pairs, instance.water, instance.water_cap, instance.water_node
    )
    if not power_binding.any() and not water_binding.any():
        return (
            _assignment(
                instance,
                _prune_interchangeable(
                    instance, pairs, np.zeros(len(instance.plot_ids), dtype=np.int64)
                ),
            ),
            "optimal",
            0.0,
            "assignment",
        )
    group = _resource_group(instance, power_binding, water_binding)
    pruned = _prune_interchangeable(instance, pairs, group)
    time_limit = limits[0]
    deadline = time.perf_counter() + (0.1 * time_limit if time_limit is not None else 10.0)
    warm = _heuristic(instance, pruned, deadline)
    state, status, gap = _milp(
        instance, pruned, (power_binding, water_binding), group, warm, limits, on_progress, started
    )
    return state, status, gap, "milp"


def _resource_group(
    instance: _Instance, power_binding: np.ndarray, water_binding: np.ndarray
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


# ----------------------------------------------------------------------------- CSV


def read_applications_csv(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Load applications from a CSV file, checking every row.

    Parameters
    ----------
    path : str or path-like
        UTF-8 CSV with a header containing at least ``app_id, min_ha, max_ha, sector,
        rail_need, power_kw, invest, jobs``; optional ``water_m3d, hazard, priority,
        plot_pref``.  ``rail_need`` accepts yes/no, true/false, 1/0.

    Returns
    -------
    pandas.DataFrame
        The rows with numeric columns as floats and ``rail_need`` as bool.

    Raises
    ------
    AllocationInputError
        Listing every bad row by file line, e.g. ``line 4: power_kw 'abc' is not a number``.
    """
    with Path(path).open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = [name.strip() for name in next(reader, [])]
        missing = [name for name in APPLICATION_COLUMNS if name not in header]
        if missing:
            raise AllocationInputError(f"line 1: missing column(s) {', '.join(missing)}")
        records, problems, seen = [], [], {}
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                problems.append(
                    f"line {reader.line_num}: {len(row)} fields, header has {len(header)}"
                )
                continue
            record = {name: cell.strip() for name, cell in zip(header, row)}
            problems.extend(
                f"line {reader.line_num}: {problem}"
                for problem in _record_problems(record, reader.line_num, seen)
            )
            records.append(record)
    if problems:
        raise AllocationInputError("bad applications file:\n" + "\n".join(problems))
    return _typed_applications(pd.DataFrame(records, columns=header))


def _record_problems(record: dict[str, str], line: int, seen: dict[str, int]) -> list[str]:
    problems = [f"{name} is empty" for name in ("app_id", "sector") if not record[name]]
    if record["app_id"] in seen:
        problems.append(f"app_id {record['app_id']!r} repeats line {seen[record['app_id']]}")
    seen.setdefault(record["app_id"], line)
    numbers: dict[str, float] = {}
    for name in ("min_ha", "max_ha", "power_kw", "invest", "jobs", *OPTIONAL_APPLICATION_NUMBERS):
        text = record.get(name, "")
        if not text:
            if name in APPLICATION_COLUMNS:
                problems.append(f"{name} is empty")
            continue
        try:
            numbers[name] = float(text)
        except ValueError:
            problems.append(f"{name} {text!r} is not a number")
            continue
        if not math.isfinite(numbers[name]):
            problems.append(f"{name} {text!r} is not a finite number")
        elif numbers[name] < 0:
            problems.append(f"{name} {text} is negative")
    if "min_ha" in numbers and "max_ha" in numbers and numbers["min_ha"] > numbers["max_ha"]:
        problems.append(f"min_ha {record['min_ha']} > max_ha {record['max_ha']}")
    if record["rail_need"].lower() not in _TRUE_WORDS | _FALSE_WORDS:
        problems.append(f"rail_need {record['rail_need']!r} is not yes/no")
    return problems


def _typed_applications(frame: pd.DataFrame) -> pd.DataFrame:
    for name in ("min_ha", "max_ha", "power_kw", "invest", "jobs", *OPTIONAL_APPLICATION_NUMBERS):
        if name in frame.columns:
            frame[name] = pd.to_numeric(frame[name].replace("", np.nan)).astype(float)
    frame["rail_need"] = frame["rail_need"].str.lower().isin(_TRUE_WORDS)
    if "plot_pref" in frame.columns:
        frame["plot_pref"] = frame["plot_pref"].replace("", None)
    return frame
