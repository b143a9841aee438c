"""Plot allocation: match investor applications to zone plots under size, zoning, rail and utility-headroom rules."""

from __future__ import annotations

import csv
import ctypes
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment

__all__ = [
    "AllocationInputError",
    "AllocationResult",
    "DEFAULT_WEIGHTS",
    "OBJECTIVES",
    "read_applications_csv",
    "solve",
]

OBJECTIVES = ("investment", "jobs", "count", "weighted")
METHODS = ("milp", "greedy")
PLOT_COLUMNS = ("plot_id", "area_ha", "rail", "node", "sectors")
APPLICATION_COLUMNS = ("app_id", "min_ha", "max_ha", "sector", "rail_need", "power_kw", "invest", "jobs")
CAPACITY_COLUMNS = ("node", "power_kw")
DEFAULT_WEIGHTS: Mapping[str, float] = {
    "invest": 0.35,
    "jobs": 0.25,
    "priority": 0.10,
    "fit": 0.10,
    "distance": 0.10,
    "preference": 0.10,
}
_AREA_TOLERANCE = 1e-9
_TRUE_WORDS = {"true", "yes", "y", "1", "t"}
_FALSE_WORDS = {"false", "no", "n", "0", "f"}


class AllocationInputError(ValueError):
    """Input tables violate the allocation contract; the message names the table, column and rows."""


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
        Relative gap between the objective and the best proven bound; 0.0 when proven
        optimal, NaN for the greedy baseline.
    method : str
        ``"milp"``, ``"assignment"`` (no capacity could bind, solved as a matching) or ``"greedy"``.
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
    """Validated inputs as positional arrays; nodes are indices into ``node_names``."""

    app_ids: np.ndarray
    min_ha: np.ndarray
    max_ha: np.ndarray
    sector: np.ndarray
    rail_need: np.ndarray
    power: np.ndarray
    water: np.ndarray
    hazard: np.ndarray
    app_value: np.ndarray
    plot_ids: np.ndarray
    area: np.ndarray
    rail: np.ndarray
    power_node: np.ndarray
    water_node: np.ndarray
    hazard_ok: np.ndarray
    allowed_keys: np.ndarray
    any_sector: np.ndarray
    app_sector_code: np.ndarray
    node_names: np.ndarray
    power_cap: np.ndarray
    water_cap: np.ndarray


@dataclass
class _Pairs:
    """Compatible (application, plot) pairs sorted by application, then plot area and id."""

    app: np.ndarray
    plot: np.ndarray
    value: np.ndarray
    connected: np.ndarray
    stage_counts: dict[str, np.ndarray]


# ----------------------------------------------------------------------------- validation


def _require_columns(frame: pd.DataFrame, columns: tuple[str, ...], table: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise AllocationInputError(f"{table}: expected a pandas DataFrame, got {type(frame).__name__}")
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise AllocationInputError(f"{table}: missing column(s) {', '.join(missing)}")


def _describe_rows(frame: pd.DataFrame, mask: np.ndarray, id_column: str) -> str:
    rows = np.flatnonzero(mask)
    shown = ", ".join(f"row {row} ({id_column} {frame[id_column].iloc[row]!r})" for row in rows[:5])
    return shown + (f" and {len(rows) - 5} more" if len(rows) > 5 else "")


def _numbers(frame: pd.DataFrame, column: str, table: str, id_column: str, *, default: float | None = None) -> np.ndarray:
    """Column as float array; missing column or nulls take ``default`` (None: required)."""
    if column not in frame.columns:
        return np.full(len(frame), default, dtype=float)
    raw = frame[column]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    null = raw.isna().to_numpy()
    not_number = np.isnan(values) & ~null
    if not_number.any():
        raise AllocationInputError(f"{table}: column {column} is not a number at {_describe_rows(frame, not_number, id_column)}")
    if null.any():
        if default is None:
            raise AllocationInputError(f"{table}: column {column} is empty at {_describe_rows(frame, null, id_column)}")
        values[null] = default
    negative = values < 0
    if negative.any():
        raise AllocationInputError(f"{table}: column {column} is negative at {_describe_rows(frame, negative, id_column)}")
    if np.isnan(values).any() or (np.isinf(values) & (values != default)).any():
        raise AllocationInputError(f"{table}: column {column} must be finite")
    return values


def _flags(frame: pd.DataFrame, column: str, table: str, id_column: str) -> np.ndarray:
    raw = frame[column]
    if raw.dtype == bool:
        return raw.to_numpy()
    words = raw.map(lambda value: str(value).strip().lower() if pd.notna(value) else "")
    words = words.replace({"1.0": "1", "0.0": "0"})
    bad = ~words.isin(_TRUE_WORDS | _FALSE_WORDS).to_numpy()
    if bad.any():
        raise AllocationInputError(f"{table}: column {column} is not yes/no at {_describe_rows(frame, bad, id_column)}")
    return words.isin(_TRUE_WORDS).to_numpy()


def _ids(frame: pd.DataFrame, column: str, table: str) -> np.ndarray:
    ids = frame[column]
    null = ids.isna().to_numpy()
    if null.any():
        raise AllocationInputError(f"{table}: column {column} is empty at rows {np.flatnonzero(null)[:5].tolist()}")
    duplicated = ids.duplicated(keep=False).to_numpy()
    if duplicated.any():
        raise AllocationInputError(f"{table}: duplicate {column} {sorted(map(str, ids[duplicated].unique()))[:5]}")
    return ids.to_numpy(dtype=object)


def _node_keys(values: pd.Series) -> pd.Series:
    """Node ids as strings so that 3, 3.0 (ints read with nulls) and '3' name the same substation."""

    def key(value: object) -> str | None:
        if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
            return None
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        text = str(value).strip()
        return text or None

    return values.map(key).astype(object)


def _capacity_table(capacities: pd.DataFrame) -> tuple[pd.Series, np.ndarray, np.ndarray | None]:
    _require_columns(capacities, CAPACITY_COLUMNS, "capacities")
    names = _node_keys(capacities["node"])
    if names.isna().any():
        raise AllocationInputError("capacities: column node is empty at rows " f"{np.flatnonzero(names.isna().to_numpy())[:5].tolist()}")
    if names.duplicated().any():
        raise AllocationInputError(f"capacities: duplicate node {sorted(names[names.duplicated()].unique())[:5]}")
    power = _numbers(capacities, "power_kw", "capacities", "node", default=0.0)
    water = _numbers(capacities, "water_m3d", "capacities", "node", default=0.0) if "water_m3d" in capacities.columns else None
    return names, power, water


def _sector_index(sectors: pd.Series, app_sectors: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Encode allowed (plot, sector) pairs as sorted keys ``plot * n_codes + code`` for vectorised lookup."""
    exploded = sectors.astype(str).str.split(",").explode()
    codes = exploded.str.strip().str.upper()
    plot_row = exploded.index.to_numpy()
    any_sector = np.zeros(len(sectors), dtype=bool)
    any_sector[plot_row[(codes == "*").to_numpy()]] = True
    app_codes = app_sectors.astype(str).str.strip().str.upper()
    vocabulary = pd.Index(pd.unique(pd.concat([codes[codes != "*"], app_codes], ignore_index=True)))
    named = (codes != "*").to_numpy() & (codes != "").to_numpy()
    keys = plot_row[named] * len(vocabulary) + vocabulary.get_indexer(codes[named])
    return np.unique(keys), any_sector, vocabulary.get_indexer(app_codes)


def _prepare(plots: pd.DataFrame, applications: pd.DataFrame, capacities: pd.DataFrame, objective: str, weights: Mapping[str, float] | None) -> _Instance:
    _require_columns(plots, PLOT_COLUMNS, "plots")
    _require_columns(applications, APPLICATION_COLUMNS, "applications")
    plots = plots.reset_index(drop=True)
    applications = applications.reset_index(drop=True)
    plot_ids = _ids(plots, "plot_id", "plots")
    app_ids = _ids(applications, "app_id", "applications")
    if plots["sectors"].isna().any():
        raise AllocationInputError(f"plots: column sectors is empty at {_describe_rows(plots, plots['sectors'].isna().to_numpy(), 'plot_id')}")
    if applications["sector"].isna().any():
        raise AllocationInputError(
            f"applications: column sector is empty at {_describe_rows(applications, applications['sector'].isna().to_numpy(), 'app_id')}"
        )
    min_ha = _numbers(applications, "min_ha", "applications", "app_id")
    max_ha = _numbers(applications, "max_ha", "applications", "app_id")
    inverted = min_ha > max_ha
    if inverted.any():
        raise AllocationInputError(f"applications: min_ha > max_ha at {_describe_rows(applications, inverted, 'app_id')}")
    cap_names, power_cap, water_cap = _capacity_table(capacities)
    plot_power_names = _node_keys(plots["node"])
    water_modelled = water_cap is not None
    plot_water_names = _node_keys(plots["water_node"]) if "water_node" in plots.columns else pd.Series([None] * len(plots), dtype=object)
    node_names = pd.Index(pd.unique(pd.concat([cap_names, plot_power_names.dropna(), plot_water_names.dropna()], ignore_index=True)))
    full_power = np.zeros(len(node_names))
    full_power[node_names.get_indexer(cap_names)] = power_cap
    full_water = np.zeros(len(node_names))
    if water_modelled:
        full_water[node_names.get_indexer(cap_names)] = water_cap
    allowed_keys, any_sector, app_sector_code = _sector_index(plots["sectors"], applications["sector"])
    area = _numbers(plots, "area_ha", "plots", "plot_id")
    instance = _Instance(
        app_ids=app_ids,
        min_ha=min_ha,
        max_ha=max_ha,
        sector=applications["sector"].astype(str).str.strip().to_numpy(dtype=object),
        rail_need=_flags(applications, "rail_need", "applications", "app_id"),
        power=_numbers(applications, "power_kw", "applications", "app_id"),
        water=_numbers(applications, "water_m3d", "applications", "app_id", default=0.0) if water_modelled else np.zeros(len(applications)),
        hazard=_numbers(applications, "hazard", "applications", "app_id", default=0.0),
        app_value=np.zeros(len(applications)),
        plot_ids=plot_ids,
        area=area,
        rail=_flags(plots, "rail", "plots", "plot_id"),
        power_node=_node_positions(node_names, plot_power_names),
        water_node=_node_positions(node_names, plot_water_names),
        hazard_ok=_numbers(plots, "hazard_ok", "plots", "plot_id", default=np.inf),
        allowed_keys=allowed_keys,
        any_sector=any_sector,
        app_sector_code=app_sector_code,
        node_names=node_names.to_numpy(dtype=object),
        power_cap=full_power,
        water_cap=full_water,
    )
    instance.app_value = _application_values(applications, objective)
    _check_weights(objective, weights)
    return instance


def _node_positions(node_names: pd.Index, names: pd.Series) -> np.ndarray:
    positions = np.full(len(names), -1, dtype=np.int64)
    present = names.notna().to_numpy()
    positions[present] = node_names.get_indexer(names[present])
    return positions


# ----------------------------------------------------------------------------- objective


def _application_values(applications: pd.DataFrame, objective: str) -> np.ndarray:
    """Plot-independent part of each application's value under ``objective``."""
    if objective not in OBJECTIVES:
        raise AllocationInputError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    invest = _numbers(applications, "invest", "applications", "app_id")
    jobs = _numbers(applications, "jobs", "applications", "app_id")
    if objective == "investment":
        return invest
    if objective == "jobs":
        return jobs
    if objective == "count":
        return np.ones(len(applications))
    return invest  # the weighted mix is assembled per pair in _weighted_values


def _check_weights(objective: str, weights: Mapping[str, float] | None) -> None:
    if weights is None:
        return
    if objective != "weighted":
        raise AllocationInputError("weights apply only to objective='weighted'")
    unknown = sorted(set(weights) - set(DEFAULT_WEIGHTS))
    if unknown:
        raise AllocationInputError(f"unknown weight(s) {unknown}; known: {sorted(DEFAULT_WEIGHTS)}")
    bad = {key: value for key, value in weights.items() if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0)}
    if bad:
        raise AllocationInputError(f"weights must be finite and non-negative: {bad}")


def _share(values: np.ndarray) -> np.ndarray:
    top = values.max(initial=0.0)
    return values / top if top > 0 else np.zeros_like(values)


def _weighted_values(applications: pd.DataFrame, plots: pd.DataFrame, app: np.ndarray, plot: np.ndarray, weights: Mapping[str, float] | None) -> np.ndarray:
    """Per-pair weighted score; every term is scaled into [0, 1] so weights are comparable."""
    mix = {**DEFAULT_WEIGHTS, **(weights or {})}
    invest = _share(_numbers(applications, "invest", "applications", "app_id"))
    jobs = _share(_numbers(applications, "jobs", "applications", "app_id"))
    priority = _share(_numbers(applications, "priority", "applications", "app_id", default=0.0))
    min_ha = applications["min_ha"].to_numpy(dtype=float)
    area = plots["area_ha"].to_numpy(dtype=float)
    fit = np.where(area[plot] > 0, min_ha[app] / np.maximum(area[plot], _AREA_TOLERANCE), 1.0)
    nearness = 1.0 - _share(_numbers(plots, "dist_m", "plots", "plot_id", default=0.0))
    score = (
        mix["invest"] * invest[app]
        + mix["jobs"] * jobs[app]
        + mix["priority"] * priority[app]
        + mix["fit"] * fit
        + mix["distance"] * nearness[plot]
    )
    if "plot_pref" in applications.columns and mix["preference"] > 0:
        score += mix["preference"] * _preferred(applications["plot_pref"], plots["plot_id"], app, plot)
    return score


def _preferred(plot_pref: pd.Series, plot_ids: pd.Series, app: np.ndarray, plot: np.ndarray) -> np.ndarray:
    """1.0 where the pair's plot is among the application's comma-separated preferred plot ids."""
    wanted = plot_pref.dropna().astype(str).str.split(",").explode().str.strip()
    wanted = wanted[wanted != ""]
    plot_row = pd.Index(plot_ids.astype(str)).get_indexer(wanted)
    known = plot_row >= 0
    keys = np.unique(wanted.index.to_numpy()[known] * len(plot_ids) + plot_row[known])
    return np.isin(app * len(plot_ids) + plot, keys).astype(float)


# ----------------------------------------------------------------------------- compatible pairs


def _size_ranges(instance: _Instance) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Plots sorted by (area, id) and each application's slice of that order within [min_ha, max_ha]."""
    order = _plot_order(instance)
    sorted_area = instance.area[order]
    low = np.searchsorted(sorted_area, instance.min_ha - _AREA_TOLERANCE, side="left")
    high = np.searchsorted(sorted_area, instance.max_ha + _AREA_TOLERANCE, side="right")
    return order, low, np.maximum(high, low)


def _plot_order(instance: _Instance) -> np.ndarray:
    tie_break = pd.Series(instance.plot_ids).astype(str).rank(method="first").to_numpy()
    return np.lexsort((tie_break, instance.area))


def _compatible_pairs(instance: _Instance) -> _Pairs:
    """All (application, plot) pairs passing every static rule, with per-stage survivor counts for reasons."""
    order, low, high = _size_ranges(instance)
    lengths = high - low
    app = np.repeat(np.arange(len(instance.app_ids)), lengths)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    plot = order[np.arange(lengths.sum()) - starts + np.repeat(low, lengths)]
    stages = {
        "size": np.ones(len(app), dtype=bool),
        "sector": _sector_allowed(instance, app, plot),
        "rail": ~instance.rail_need[app] | instance.rail[plot],
        "hazard": instance.hazard[app] <= instance.hazard_ok[plot],
        "power": (instance.power[app] == 0) | (instance.power_node[plot] >= 0),
        "water": (instance.water[app] == 0) | (instance.water_node[plot] >= 0),
    }
    stage_counts: dict[str, np.ndarray] = {}
    passing = np.ones(len(app), dtype=bool)
    for name, mask in stages.items():
        passing &= mask
        stage_counts[name] = np.bincount(app[passing], minlength=len(instance.app_ids))
    connected = passing.copy()
    passing &= _static_headroom(instance, app, plot)
    stage_counts["headroom"] = np.bincount(app[passing], minlength=len(instance.app_ids))
    return _Pairs(app=app[passing], plot=plot[passing], value=np.empty(0), connected=np.stack([app[connected], plot[connected]]), stage_counts=stage_counts)


def _sector_allowed(instance: _Instance, app: np.ndarray, plot: np.ndarray) -> np.ndarray:
    code = instance.app_sector_code[app]
    keys = plot.astype(np.int64) * max(len(instance.app_sector_code), 1) + code
    keys = plot.astype(np.int64) * _vocabulary_size(instance) + code
    found = np.searchsorted(instance.allowed_keys, keys)
    found = np.minimum(found, max(len(instance.allowed_keys) - 1, 0))
    listed = instance.allowed_keys[found] == keys if len(instance.allowed_keys) else np.zeros(len(keys), dtype=bool)
    return instance.any_sector[plot] | (listed & (code >= 0))


def _vocabulary_size(instance: _Instance) -> int:
    return int(max(instance.app_sector_code.max(initial=-1), (instance.allowed_keys.max(initial=-1) % 1) if False else -1)) + 1
