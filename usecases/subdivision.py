"""Subdivide expansion land: preview streets and plots (writes nothing), then commit them."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.crs import to_wgs84
from geo.store import Conflict, NotFound, Store
from planner.parcels import new_plot_id, polygon_from_geojson
from planner.subdivision import (
    SITE_LAYERS,
    Progress,
    Site,
    Subdivision,
    SubdivisionError,
    SubdivisionParams,
    check_area,
    compare,
    params_dict,
)

__all__ = [
    "SubdivisionConflict",
    "Preview",
    "read_params",
    "preview",
    "commit",
    "preview_job",
    "PLAN_VERSION",
]

PLAN_VERSION = 1
#: Generated street roles and the road class they are stored as.
ROAD_CLASSES = {"spine": "collector", "cross": "collector", "local": "local", "connector": "local"}
_MARGIN_M = 2_000.0
_OVERLAP_M2 = 1.0


class SubdivisionConflict(Conflict):
    """The store changed since the preview (committed already, plots drawn meanwhile)."""


def read_params(values: Mapping[str, Any]) -> SubdivisionParams:
    """Parameters from a mapping of field names (JSON, forms); unknown names are refused.

    Raises
    ------
    SubdivisionError
        Naming the unknown or non-numeric field, or what contradicts (``check``).
    """
    known = {f.name: f for f in fields(SubdivisionParams)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise SubdivisionError(f"unknown subdivision parameter(s): {', '.join(unknown)}")
    out: dict[str, Any] = {}
    for name, value in values.items():
        if value is None or value == "":
            continue
        try:
            if name in ("method", "streets"):
                out[name] = str(value)
            elif name == "keep_existing":
                out[name] = (
                    value
                    if isinstance(value, bool)
                    else str(value).lower() in ("1", "true", "yes", "on")
                )
            else:
                out[name] = float(value)
        except (TypeError, ValueError):
            raise SubdivisionError(f"{name} must be a number (got {value!r})") from None
    params = SubdivisionParams(**out)
    params.check()
    return params


@dataclass
class Preview:
    """A subdivision shown before anything is stored.

    Attributes
    ----------
    exp_id : str or None
        The expansion area subdivided (None for a drawn area).
    area : Polygon
        Working CRS.
    result : Subdivision
        The chosen method's plots and streets.
    comparison : dict
        Every method's metrics on the same input, by method name.
    """

    exp_id: str | None
    area: Any
    result: Subdivision
    comparison: dict[str, dict[str, Any]]

    @property
    def metrics(self) -> dict[str, Any]:
        """The chosen method's metrics with every method's beside them (``compare``)."""
        return {**self.result.metrics, "compare": self.comparison}

    def features(self) -> gpd.GeoDataFrame:
        """Plots, streets and replaced plots with ``kind`` plot|street|removed (working CRS)."""
        plots = self.result.plots.assign(kind="plot", plot=np.arange(1, len(self.result.plots) + 1))
        streets = self.result.streets.assign(kind="street")
        removed = self.result.removed[["plot_id", "status", "area_ha", "geometry"]].assign(
            kind="removed"
        )
        return gpd.GeoDataFrame(
            pd.concat([plots, streets, removed], ignore_index=True),
            geometry="geometry",
            crs=self.result.plots.crs,
        )

    def feature_collection(self) -> dict[str, Any]:
        """The preview as RFC 7946 GeoJSON (WGS84) with ``metrics``, ``warnings``,
        ``params`` and ``exp_id`` as top-level members."""
        collection = json.loads(to_wgs84(self.features()).to_json(drop_id=True, na="drop"))
        collection.update(
            exp_id=self.exp_id,
            metrics=self.metrics,
            warnings=self.result.warnings,
            params=params_dict(self.result.params),
        )
        return collection

    def plan(self) -> dict[str, Any]:
        """What :func:`commit` stores, JSON-able, geometry as working-CRS WKT."""
        plots = self.result.plots
        streets = self.result.streets[~self.result.streets["existing"].astype(bool)]
        return {
            "version": PLAN_VERSION,
            "exp_id": self.exp_id,
            "area": shapely.to_wkt(self.area, rounding_precision=3),
            "method": self.result.params.method,
            "plots": shapely.to_wkt(
                np.asarray(plots.geometry.values), rounding_precision=3
            ).tolist(),
            "streets": [
                {"role": r, "row_m": w, "wkt": g}
                for r, w, g in zip(
                    streets["role"],
                    streets["row_m"].astype(float),
                    shapely.to_wkt(np.asarray(streets.geometry.values), rounding_precision=3),
                )
            ],
            "removed": [
                {"plot_id": str(k), "version": int(v)}
                for k, v in zip(self.result.removed["plot_id"], self.result.removed["version"])
            ],
        }


def _site_layers(store: Store, area: Any) -> dict[str, pd.DataFrame]:
    minx, miny, maxx, maxy = (float(v) for v in shapely.buffer(area, _MARGIN_M).bounds)
    bbox = (minx, miny, maxx, maxy)
    return {name: store.read(name, bbox=bbox) for name in SITE_LAYERS}


def _area(
    store: Store, exp_id: str | None, geometry: Mapping[str, Any] | None
) -> tuple[Any, list[str]]:
    """(area, notes): the expansion area, or the drawn polygon cut to the zone and its
    expansion areas (the land plots may be drawn on)."""
    if (exp_id is None) == (geometry is None):
        raise SubdivisionError("give either an expansion area id or a drawn polygon")
    if exp_id is not None:
        try:
            return store.get("expansion", exp_id)["geometry"], []
        except NotFound:
            known = ", ".join(store.read("expansion")["exp_id"].astype(str)) or "none"
            raise NotFound(f"there is no expansion area {exp_id!r} (known: {known})") from None
    drawn = check_area(polygon_from_geojson(geometry, epsg=store.epsg), store.epsg)
    land = shapely.union_all(
        np.concatenate(
            [np.asarray(store.read(name).geometry.values) for name in ("zone", "expansion")]
        )
    )
    parts = shapely.get_parts(shapely.intersection(drawn, land))
    parts = parts[shapely.get_type_id(parts) == 3]
    if not len(parts) or shapely.area(parts).max() < 1.0:
        raise SubdivisionError(
            "the drawn area lies outside the zone and its expansion areas; "
            "draw it on land the zone holds"
        )
    area = parts[int(np.argmax(shapely.area(parts)))]
    left_out = (drawn.area - area.area) / 10_000.0
    notes = (
        [
            f"{left_out:.2f} ha of the drawn area outside the zone and its expansion areas "
            "(or cut off from the rest) was left out"
        ]
        if left_out >= 0.01
        else []
    )
    return area, notes


def preview(
    store: Store,
    params: SubdivisionParams,
    *,
    exp_id: str | None = None,
    geometry: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> Preview:
    """Subdivide an expansion area (by id) or a drawn polygon (WGS84 GeoJSON) with every
    method; nothing is written.

    Raises
    ------
    NotFound
        For an unknown expansion area.
    SubdivisionError, planner.parcels.ParcelInputError
        For bad parameters, a bad polygon, or land that cannot be subdivided.
    """
    params.check()
    area, notes = _area(store, exp_id, geometry)
    site = Site.from_snapshot(_site_layers(store, area), area, exp_id, epsg=store.epsg)
    results = compare(site, params, progress=progress)
    chosen = results[params.method]
    chosen.warnings[:0] = notes
    return Preview(exp_id, site.area, chosen, {name: r.metrics for name, r in results.items()})


def _next_ids(existing: list[str], prefix: str, count: int) -> list[str]:
    first = new_plot_id(existing, prefix=prefix)
    match = re.search(r"(\d+)$", first)
    assert match is not None, "new_plot_id ends in a number"
    number = int(match.group(1))
    width = max(3, len(first) - len(prefix))
    return [f"{prefix}{number + i:0{width}d}" for i in range(count)]


def _check_unchanged(tx: Any, plan: Mapping[str, Any], plots: np.ndarray) -> None:
    """Refuse the commit when a replaced plot changed or went, or plots now overlap the
    new ones."""
    for item in plan["removed"]:
        try:
            row = tx.get("plots", item["plot_id"], for_update=True)
        except NotFound:
            raise SubdivisionConflict(
                f"plot {item['plot_id']} the preview replaces no longer exists (was this "
                "subdivision committed already?); preview again"
            ) from None
        if int(row.get("version") or 0) != int(item["version"]) or row["status"] != "candidate":
            raise SubdivisionConflict(
                f"plot {item['plot_id']} changed since the preview (now {row['status']}, "
                f"version {row.get('version')}); preview again"
            )
    bbox = tuple(float(v) for v in shapely.bounds(shapely.union_all(plots)))
    present = tx.read("plots", bbox=bbox)
    present = present[~present["plot_id"].isin([r["plot_id"] for r in plan["removed"]])]
    if not len(present):
        return
    geoms = np.asarray(present.geometry.values, dtype=object)
    tree = shapely.STRtree(plots)
    p, s = tree.query(geoms, predicate="intersects")
    overlap = shapely.area(shapely.intersection(geoms[p], plots[s])) > _OVERLAP_M2
    if overlap.any():
        ids = sorted(set(present["plot_id"].to_numpy()[p[overlap]].astype(str)))
        shown = ", ".join(ids[:5]) + (f" (+{len(ids) - 5})" if len(ids) > 5 else "")
        raise SubdivisionConflict(
            f"plot(s) {shown} now lie where the preview puts new plots (was this subdivision "
            "committed already, or were plots drawn meanwhile?); preview again"
        )


def commit(store: Store, plan: Mapping[str, Any], *, user: str) -> dict[str, list[str]]:
    """Store a previewed subdivision in one transaction: new ``candidate`` plots with the
    next free ids, new streets as ``planned`` roads, replaced candidates deleted.

    Returns
    -------
    dict
        ``plots``, ``roads`` (new ids) and ``removed`` (deleted plot ids).

    Raises
    ------
    SubdivisionConflict
        When the store changed since the preview; nothing is written.
    SubdivisionError
        For a plan that is not one (missing members, unreadable geometry).
    """
    if (
        not isinstance(plan, Mapping)
        or plan.get("version") != PLAN_VERSION
        or not plan.get("plots")
    ):
        raise SubdivisionError("this is not a subdivision preview to commit; preview again")
    try:
        plots = shapely.from_wkt(np.asarray(plan["plots"], dtype=object))
        streets = shapely.from_wkt(np.asarray([s["wkt"] for s in plan["streets"]], dtype=object))
    except (shapely.errors.GEOSException, KeyError, TypeError) as err:
        raise SubdivisionError(f"the preview's geometry cannot be read ({err})") from None
    exp_id = plan.get("exp_id")
    with store.transaction(user) as tx:
        _check_unchanged(tx, plan, plots)
        # Ids follow the highest before the replaced plots go: a deleted id is never reused.
        plot_ids = _next_ids(tx.read("plots")["plot_id"].astype(str).tolist(), "P-", len(plots))
        for item in plan["removed"]:
            tx.delete("plots", item["plot_id"], version=int(item["version"]))
        tx.insert(
            "plots",
            gpd.GeoDataFrame(
                {"plot_id": plot_ids, "status": "candidate", "sectors": "*", "exp_id": exp_id},
                geometry=plots,
                crs=tx.epsg,
            ),
        )
        road_ids = _next_ids(tx.read("roads")["asset_id"].astype(str).tolist(), "R-", len(streets))
        where = exp_id or "drawn area"
        tx.insert(
            "roads",
            gpd.GeoDataFrame(
                {
                    "asset_id": road_ids,
                    "name": [f"{where}: new {s['role']} street" for s in plan["streets"]],
                    "class": [ROAD_CLASSES.get(s["role"], "local") for s in plan["streets"]],
                    "status": "planned",
                    "note": [
                        f"right of way {s['row_m']:g} m (subdivision)" for s in plan["streets"]
                    ],
                },
                geometry=streets,
                crs=tx.epsg,
            ),
        )
    return {
        "plots": plot_ids,
        "roads": road_ids,
        "removed": [r["plot_id"] for r in plan["removed"]],
    }


def preview_job(ctx: Any) -> dict[str, Any]:
    """Job function (``usecases.jobs``): ``ctx.params`` holds ``exp_id`` or ``geometry`` and
    ``params``; the result holds the preview GeoJSON and the plan to commit."""
    params = read_params(ctx.params.get("params") or {})
    result = preview(
        ctx.runner.store,
        params,
        exp_id=ctx.params.get("exp_id"),
        geometry=ctx.params.get("geometry"),
        progress=ctx.progress,
    )
    return {"preview": result.feature_collection(), "plan": result.plan()}
