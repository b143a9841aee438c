"""Allocation inputs: the contract's columns, their validation, and the objective's value model."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

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


TOLERANCE = 1e-9


TRUE_WORDS = frozenset({"true", "yes", "y", "1", "t"})


FALSE_WORDS = frozenset({"false", "no", "n", "0", "f"})


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """``np.unique`` by sorting: numpy 2.4's hash-based ``np.unique`` takes ~15x longer on millions of integers."""
    ordered = np.sort(values)
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]] if len(ordered) else ordered


class AllocationInputError(ValueError):
    """Input violates the allocation contract; the message names the table, column and rows."""


@dataclass
class Instance:
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
class Value:
    """Pair value = ``per_app[a] + fit_weight * min_ha[a] / area[p] + per_plot[p] + preference_weight * [p preferred by a]``."""

    per_app: np.ndarray
    per_plot: np.ndarray
    fit_weight: float
    preference_weight: float
    preference_keys: np.ndarray


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


def numbers(
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
    bad = ~words.isin(TRUE_WORDS | FALSE_WORDS).to_numpy()
    if bad.any():
        raise AllocationInputError(
            f"{table}: column {column} is not yes/no at {_describe_rows(frame, bad, id_column)}"
        )
    return words.isin(TRUE_WORDS).to_numpy()


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
    rows = all_names.get_indexer(pd.Index(names))
    power[rows] = numbers(capacities, "power_kw", "capacities", "node", default=0.0)
    if water_modelled:
        water[rows] = numbers(capacities, "water_m3d", "capacities", "node", default=0.0)
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
    keys = plot_row[named].astype(np.int64) * len(vocabulary) + vocabulary.get_indexer(
        pd.Index(codes[named])
    )
    return (
        sorted_unique(keys),
        any_sector,
        vocabulary.get_indexer(pd.Index(app_codes)),
        len(vocabulary),
    )


def _node_positions(node_names: pd.Index, names: pd.Series) -> np.ndarray:
    positions = np.full(len(names), -1, dtype=np.int64)
    present = names.notna().to_numpy()
    positions[present] = node_names.get_indexer(pd.Index(names[present]))
    return positions


def prepare(plots: object, applications: object, capacities: object) -> Instance:
    _require_columns(plots, PLOT_COLUMNS, "plots")
    _require_columns(applications, APPLICATION_COLUMNS, "applications")
    assert isinstance(plots, pd.DataFrame) and isinstance(applications, pd.DataFrame)
    plots = plots.reset_index(drop=True)
    applications = applications.reset_index(drop=True)
    min_ha = numbers(applications, "min_ha", "applications", "app_id")
    max_ha = numbers(applications, "max_ha", "applications", "app_id")
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
    return Instance(
        app_ids=_ids(applications, "app_id", "applications"),
        min_ha=min_ha,
        max_ha=max_ha,
        sector=sector.to_numpy(dtype=object),
        sector_code=sector_code,
        rail_need=_flags(applications, "rail_need", "applications", "app_id"),
        power=numbers(applications, "power_kw", "applications", "app_id"),
        water=numbers(applications, "water_m3d", "applications", "app_id", default=0.0)
        if water_modelled
        else no_water,
        hazard=numbers(applications, "hazard", "applications", "app_id", default=0.0),
        plot_ids=_ids(plots, "plot_id", "plots"),
        area=numbers(plots, "area_ha", "plots", "plot_id"),
        rail=_flags(plots, "rail", "plots", "plot_id"),
        power_node=_node_positions(node_names, power_names),
        water_node=_node_positions(node_names, water_names),
        hazard_ok=numbers(plots, "hazard_ok", "plots", "plot_id", default=np.inf),
        any_sector=any_sector,
        allowed_sector_keys=allowed_keys,
        sector_vocabulary=vocabulary,
        node_names=node_names.to_numpy(dtype=object),
        power_cap=power_cap,
        water_cap=water_cap,
    )


def value_model(
    plots: pd.DataFrame,
    applications: pd.DataFrame,
    objective: str,
    weights: Mapping[str, float] | None,
) -> Value:
    if objective not in OBJECTIVES:
        raise AllocationInputError(
            f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}"
        )
    if weights is not None and objective != "weighted":
        raise AllocationInputError("weights apply only to objective='weighted'")
    plots = plots.reset_index(drop=True)
    applications = applications.reset_index(drop=True)
    invest = numbers(applications, "invest", "applications", "app_id")
    jobs = numbers(applications, "jobs", "applications", "app_id")
    flat = {"investment": invest, "jobs": jobs, "count": np.ones(len(applications))}
    if objective in flat:
        return Value(flat[objective], np.zeros(len(plots)), 0.0, 0.0, np.empty(0, dtype=np.int64))
    mix = _weights(weights)
    priority = numbers(applications, "priority", "applications", "app_id", default=0.0)
    distance = numbers(plots, "dist_m", "plots", "plot_id", default=0.0)
    return Value(
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
    plot_row = pd.Index(plots["plot_id"].astype(str)).get_indexer(pd.Index(wanted))
    known = plot_row >= 0
    return sorted_unique(
        wanted.index.to_numpy()[known].astype(np.int64) * len(plots) + plot_row[known]
    )
