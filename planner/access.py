"""Accessibility of plots (distances and travel times to gates, station, substation;
isochrone bands) and the minimum-cost connection solver re-exported from ``planner.steiner``.

The metrics come from a :class:`planner.servicing.ServicingModel` (networks built
once per snapshot), so they follow the same rules: a plot enters the road network
at the nearest point of its nearest operational road, distances are along the
noded road network, travel times use the class speeds of
:data:`geo.network.ROAD_SPEEDS_KMH`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from geo.values import plain
from planner.servicing import ServicingModel
from planner.steiner import (
    DEFAULT_TIME_LIMIT_S,
    DisconnectedTerminalsError,
    SteinerTree,
    read_stp,
    steiner_tree,
    write_stp,
)

__all__ = [
    "steiner_tree",
    "SteinerTree",
    "DEFAULT_TIME_LIMIT_S",
    "DisconnectedTerminalsError",
    "read_stp",
    "write_stp",
    "DEFAULT_BANDS",
    "parse_bands",
    "accessibility",
    "isochrones",
    "metrics_document",
]

#: Default isochrone bands, minutes from a gate.
DEFAULT_BANDS: tuple[float, ...] = (2.0, 5.0, 10.0)


def parse_bands(text: str | Iterable[float] | None) -> tuple[float, ...]:
    """Isochrone bands from ``"2,5,10"`` (or numbers): positive, sorted, unique.

    Raises
    ------
    ValueError
        Naming the text that is not a positive number of minutes.
    """
    if text is None:
        return DEFAULT_BANDS
    items = [t.strip() for t in text.split(",")] if isinstance(text, str) else list(text)
    out = []
    for item in items:
        try:
            value = float(item)
        except (TypeError, ValueError):
            raise ValueError(f"minutes: {item!r} is not a number (use e.g. 2,5,10)") from None
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"minutes: {item!r} must be a positive number of minutes")
        out.append(value)
    if not out:
        raise ValueError("minutes: give at least one band, e.g. 2,5,10")
    return tuple(sorted(set(out)))


def _finite(a: ArrayLike, digits: int) -> np.ndarray:
    out = np.round(np.asarray(a, dtype=float), digits)
    return np.where(np.isfinite(out), out, np.nan)


def _best(matrix: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row id and value of the minimum of each column (None / inf for empty columns)."""
    n = matrix.shape[1]
    if matrix.shape[0] == 0:
        return np.full(n, None, dtype=object), np.full(n, np.inf)
    k = np.argmin(matrix, axis=0)
    v = matrix[k, np.arange(n)]
    best = np.asarray(ids, dtype=object)[k]  # a copy: fancy indexing
    best[~np.isfinite(v)] = None
    return best, v


def accessibility(
    model: ServicingModel,
    *,
    as_of: dt.date | str | None = None,
    what_if: Mapping[tuple[str, str], str] | None = None,
) -> gpd.GeoDataFrame:
    """Per plot: network distance and travel time to each gate, to the station (as
    recorded and as of ``as_of``) and to the serving substation.

    Returns
    -------
    GeoDataFrame (working CRS), one row per plot
        ``plot_id``, ``fronts``; per gate ``<gate>_m`` and ``<gate>_min``;
        ``gate``/``gate_m``/``gate_min`` for the nearest gate by time;
        ``station``, ``station_m``, ``station_min`` (the nearest station by road,
        whatever its status); ``rail`` (rail access as recorded) and ``rail_asof``
        (as of the date; equal to ``rail`` without one); ``substation`` and
        ``substation_m`` (serving substation as of the date, corridor distance).
        Distances in metres (0.1 m), times in minutes (0.01); NaN where unreachable.
    """
    recorded = model.travel(None, what_if)
    dated = model.travel(as_of, what_if) if as_of is not None else recorded
    plots = model.layers["plots"]
    out: dict[str, Any] = {"plot_id": dated["plot_ids"], "fronts": dated["fronts"]}
    for k, gid in enumerate(dated["gate_ids"]):
        out[f"{gid}_m"] = _finite(dated["gate_m"][k], 1)
        out[f"{gid}_min"] = _finite(dated["gate_min"][k], 2)
    gate, gate_min = _best(dated["gate_min"], dated["gate_ids"])
    out["gate"] = gate
    out["gate_min"] = _finite(gate_min, 2)
    gpos = {g: i for i, g in enumerate(dated["gate_ids"])}
    n = len(dated["plot_ids"])
    out["gate_m"] = (
        _finite(
            [dated["gate_m"][gpos[g], i] if g is not None else np.inf for i, g in enumerate(gate)],
            1,
        )
        if n
        else np.zeros(0)
    )
    station, station_m = _best(dated["station_m"], dated["station_ids"])
    spos = {s: i for i, s in enumerate(dated["station_ids"])}
    out["station"] = station
    out["station_m"] = _finite(station_m, 1)
    out["station_min"] = (
        _finite(
            [
                dated["station_min"][spos[s], i] if s is not None else np.inf
                for i, s in enumerate(station)
            ],
            2,
        )
        if n
        else np.zeros(0)
    )
    out["rail"] = recorded["rail"]
    out["rail_asof"] = dated["rail"]
    out["substation"] = dated["substation"]
    out["substation_m"] = _finite(dated["substation_m"], 1)
    return gpd.GeoDataFrame(out, geometry=plots.geometry.values, crs=plots.crs)


def isochrones(
    model: ServicingModel,
    minutes: Sequence[float] | str | None = None,
    *,
    as_of: dt.date | str | None = None,
    what_if: Mapping[tuple[str, str], str] | None = None,
    metrics: gpd.GeoDataFrame | None = None,
) -> gpd.GeoDataFrame:
    """Plots reachable within each band of minutes from the nearest operational gate.

    Returns
    -------
    GeoDataFrame (working CRS)
        The plots within the largest band: ``plot_id``, ``gate``, ``gate_min``
        and ``minutes`` — the smallest band that contains the plot's travel time
        (so a plot 3.2 min away is in band 5 of 2,5,10). Plots beyond the last
        band or unreachable are left out.
    """
    bands = np.asarray(parse_bands(minutes), dtype=float)
    m = metrics if metrics is not None else accessibility(model, as_of=as_of, what_if=what_if)
    t = m["gate_min"].to_numpy(float)
    reach = np.isfinite(t) & (t <= bands[-1] + 1e-9)
    band = np.full(len(t), np.nan)
    band[reach] = bands[np.searchsorted(bands, t[reach] - 1e-9, side="left")]
    out = m.loc[reach, ["plot_id", "gate", "gate_min", "geometry"]].copy()
    out["minutes"] = band[reach]
    return gpd.GeoDataFrame(out.reset_index(drop=True), geometry="geometry", crs=m.crs)


def metrics_document(
    model: ServicingModel,
    *,
    as_of: dt.date | str | None = None,
    minutes: Sequence[float] | str | None = None,
    what_if: Mapping[tuple[str, str], str] | None = None,
) -> dict[str, Any]:
    """The JSON document of ``zoneplan access metrics --json`` (NaN as null)."""
    bands = parse_bands(minutes)
    m = accessibility(model, as_of=as_of, what_if=what_if)
    iso = isochrones(model, bands, metrics=m)
    scen = model.scenario(as_of, what_if)
    rows = []
    frame = pd.DataFrame(m.drop(columns="geometry"))
    for rec in frame.to_dict(orient="records"):
        rows.append({k: plain(v) for k, v in rec.items()})
    by_band = {f"{b:g}": iso.loc[iso["minutes"] == b, "plot_id"].tolist() for b in bands}
    return {
        "as_of": None if scen.as_of is None else scen.as_of.isoformat(),
        # TEMPORARY: ServicingModel.today is always set; its type comes with the servicing split
        "today": model.today.isoformat(),  # type: ignore[union-attr]
        "minutes": list(bands),
        "isochrones": by_band,
        "plots": rows,
    }
