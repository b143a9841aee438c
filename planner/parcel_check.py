"""Checks of drawn parcels: a drawn outline read from GeoJSON and checked against the zone.

A parcel is acceptable (``ParcelCheck.valid``) when it is

* a valid polygon (its outline does not cross itself),
* inside the zone or an expansion area (at most 1 m² outside),
* overlapping no existing plot and no protection zone by more than 1 m²,
* at least ``min_area_ha`` (0.3 ha by default).

Crossing a road centreline is reported as a warning: it does not refuse the parcel.
Every message template is marked ``N_("...")`` and formatted after translation, so
:meth:`ParcelProblem.message` takes a gettext. :mod:`planner.parcels` re-exports all of it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.crs import WGS84_EPSG, epsg_of, transformer
from geo.i18n import N_
from geo.validate import OVERLAP_TOLERANCE_M2

__all__ = [
    "MIN_AREA_HA",
    "MAX_VERTICES",
    "Translate",
    "ParcelProblem",
    "ParcelCheck",
    "ParcelInputError",
    "check_parcel",
    "polygon_from_geojson",
]

MIN_AREA_HA = 0.3
MAX_VERTICES = 2000
_SHOWN_IDS = 5
_ROAD_CROSSING_M = 1.0
Translate = Callable[[str], str]


# --------------------------------------------------------------------------- problems
@dataclass(frozen=True)
class ParcelProblem:
    """One reason a parcel is refused (or, for warnings, worth a look).

    Attributes
    ----------
    code : str
        Stable code: ``empty``, ``type``, ``invalid``, ``outside``, ``overlaps_plot``,
        ``overlaps_protection``, ``too_small``, ``crosses_road``.
    template : str
        English message template (the msgid) with ``{name}`` placeholders.
    params : dict
        Values for the placeholders.
    ids : tuple of str
        Features involved (plots, protection zones, roads).
    """

    code: str
    template: str
    params: Mapping[str, Any] = field(default_factory=dict)
    ids: tuple[str, ...] = ()

    def message(self, translate: Translate | None = None) -> str:
        """The problem in words, translated first and formatted after."""
        text = (translate or (lambda s: s))(self.template)
        return text.format(**self.params)

    def __str__(self) -> str:
        return self.message()

    def to_dict(self, translate: Translate | None = None) -> dict[str, Any]:
        """``{"code", "message", "ids"}`` for JSON."""
        return {"code": self.code, "message": self.message(translate), "ids": list(self.ids)}


@dataclass(frozen=True)
class ParcelCheck:
    """The verdict on one parcel outline.

    Attributes
    ----------
    area_ha : float
        Metric area (working CRS), hectares, 4 decimals (0 for a missing geometry).
    valid : bool
        True when ``problems`` is empty.
    problems : tuple of ParcelProblem
        Why the parcel cannot be stored.
    warnings : tuple of ParcelProblem
        Worth a look, not refused (e.g. crossing a road).
    exp_id : str or None
        The expansion area holding most of the parcel, when it lies in one.
    polygon : shapely Polygon or None
        The checked outline (single part), working CRS.
    """

    area_ha: float
    problems: tuple[ParcelProblem, ...] = ()
    warnings: tuple[ParcelProblem, ...] = ()
    exp_id: str | None = None
    polygon: Any = None

    @property
    def valid(self) -> bool:
        return not self.problems

    def messages(self, translate: Translate | None = None) -> list[str]:
        """Every problem in words."""
        return [p.message(translate) for p in self.problems]

    def to_dict(self, translate: Translate | None = None) -> dict[str, Any]:
        """JSON-ready summary (without the polygon)."""
        return {
            "area_ha": self.area_ha,
            "valid": self.valid,
            "exp_id": self.exp_id,
            "problems": [p.to_dict(translate) for p in self.problems],
            "warnings": [p.to_dict(translate) for p in self.warnings],
        }


class ParcelInputError(ValueError):
    """A drawn geometry that cannot even be read (malformed GeoJSON, bad coordinates).

    ``field`` names where: ``geometry``, ``geometry.type`` or
    ``geometry.coordinates[ring][position]``.
    """

    def __init__(self, message: str, field: str = "geometry"):
        super().__init__(message)
        self.field = field


# --------------------------------------------------------------------------- GeoJSON in
def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def polygon_from_geojson(
    geometry: Any, *, epsg: int, max_vertices: int = MAX_VERTICES
) -> shapely.Polygon:
    """Read a WGS84 GeoJSON Polygon (or a one-part MultiPolygon) into CRS ``epsg`` (the
    store's).

    A geometry that reads but is invalid (self-intersecting) is returned as is:
    :func:`check_parcel` explains that in words.

    Raises
    ------
    ParcelInputError
        Naming the offending member or coordinate, for anything that is not a
        readable polygon: wrong type, missing or non-numeric coordinates,
        longitudes/latitudes out of range, rings with fewer than 4 positions or
        not closed, more than ``max_vertices`` positions.
    """
    if not isinstance(geometry, Mapping):
        raise ParcelInputError(
            "the geometry must be a GeoJSON object such as "
            '{"type": "Polygon", "coordinates": [...]}'
        )
    kind = geometry.get("type")
    coords = geometry.get("coordinates")
    if kind == "MultiPolygon" and isinstance(coords, list) and len(coords) == 1:
        kind, coords = "Polygon", coords[0]
    if kind != "Polygon":
        shown = "nothing" if kind is None else f"a {kind}" if isinstance(kind, str) else repr(kind)
        msg = f"{shown} was given; draw one polygon (GeoJSON type Polygon)"
        raise ParcelInputError(msg, "geometry.type")
    if not isinstance(coords, list) or not coords:
        raise ParcelInputError(
            "coordinates must be a list of rings, each a list of [longitude, latitude] positions",
            "geometry.coordinates",
        )
    rings = []
    total = 0
    for r, ring in enumerate(coords):
        where = f"geometry.coordinates[{r}]"
        if not isinstance(ring, list):
            raise ParcelInputError(
                "each ring must be a list of [longitude, latitude] positions", where
            )
        total += len(ring)
        if total > max_vertices:
            raise ParcelInputError(
                f"the polygon has more than {max_vertices} positions; simplify it",
                "geometry.coordinates",
            )
        points = []
        for i, pos in enumerate(ring):
            here = f"{where}[{i}]"
            if not isinstance(pos, list) or len(pos) < 2 or not all(_number(v) for v in pos[:3]):
                raise ParcelInputError(
                    f"position {i} of ring {r} is {pos!r}; each position "
                    "is [longitude, latitude] in decimal degrees",
                    here,
                )
            lon, lat = float(pos[0]), float(pos[1])
            if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
                raise ParcelInputError(
                    f"position {i} of ring {r} ({lon:g}, {lat:g}) is not a "
                    "longitude in -180..180 and a latitude in -90..90 "
                    "(GeoJSON is WGS84, longitude first)",
                    here,
                )
            points.append((lon, lat))
        if len(points) < 4:
            raise ParcelInputError(
                f"ring {r} has {len(points)} position(s); a polygon ring "
                "needs at least 4 (3 corners and the first again)",
                where,
            )
        if points[0] != points[-1]:
            raise ParcelInputError(
                f"ring {r} is not closed: its last position must repeat the first", where
            )
        rings.append(np.asarray(points, dtype=float))
    tr = transformer(WGS84_EPSG, epsg)
    projected = []
    for ring in rings:
        x, y = tr.transform(ring[:, 0], ring[:, 1])
        projected.append(np.column_stack([x, y]))
    return shapely.Polygon(projected[0], projected[1:])


# --------------------------------------------------------------------------- the check
def _frame(
    source: Any, layer: str, bounds: tuple[float, float, float, float] | None
) -> pd.DataFrame | None:
    """A layer from a snapshot mapping, or read from a store (by bbox when given)."""
    frame: pd.DataFrame | None
    if isinstance(source, Mapping):
        frame = source.get(layer)
    else:
        frame = source.read(layer, bbox=bounds) if bounds is not None else source.read(layer)
    return frame


def _source_epsg(source: Any) -> int:
    """The CRS of a store, a session or a snapshot (its frames declare it)."""
    if isinstance(source, Mapping):
        frames = [f for f in source.values() if isinstance(f, gpd.GeoDataFrame)]
        if not frames:
            raise ValueError("the snapshot holds no feature layer")
        return epsg_of(frames[0])
    return int(source.epsg)


def _lonlat(x: float, y: float, epsg: int) -> str:
    lon, lat = transformer(epsg, WGS84_EPSG).transform(x, y)
    return f"{lat:.5f} N, {lon:.5f} E"


_REASON_AT = re.compile(r"^(?P<what>[^\[]+)\[(?P<x>-?[\d.eE+-]+) (?P<y>-?[\d.eE+-]+)\]")


def _invalid_problem(polygon: Any, epsg: int) -> ParcelProblem:
    reason = shapely.is_valid_reason(polygon)
    match = _REASON_AT.match(reason or "")
    if match and match.group("what").strip().lower() in (
        "self-intersection",
        "ring self-intersection",
    ):
        return ParcelProblem(
            "invalid",
            N_("the outline crosses itself near {where}; draw it without crossing lines"),
            {"where": _lonlat(float(match.group("x")), float(match.group("y")), epsg)},
        )
    if match:
        return ParcelProblem(
            "invalid",
            N_("the polygon is not valid ({reason}) near {where}"),
            {
                "reason": match.group("what").strip(),
                "where": _lonlat(float(match.group("x")), float(match.group("y")), epsg),
            },
        )
    return ParcelProblem(
        "invalid", N_("the polygon is not valid ({reason})"), {"reason": reason or "?"}
    )


def _ids(frame: pd.DataFrame | None, key: str, rows: np.ndarray) -> tuple[str, ...]:
    if frame is None:  # no layer: nothing was found in it
        return ()
    return tuple(str(v) for v in frame[key].to_numpy()[rows])


def _shown(ids: Iterable[str]) -> str:
    ids = list(ids)
    text = ", ".join(ids[:_SHOWN_IDS])
    return text + (f" (+{len(ids) - _SHOWN_IDS})" if len(ids) > _SHOWN_IDS else "")


def _overlapping(
    polygon: Any, frame: pd.DataFrame | None, tolerance_m2: float
) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``frame`` overlapping ``polygon`` by more than ``tolerance_m2`` and the areas."""
    if frame is None or not len(frame):
        return np.zeros(0, dtype=np.intp), np.zeros(0)
    geoms = np.asarray(frame.geometry.values, dtype=object)
    hit = np.flatnonzero(shapely.intersects(geoms, polygon))
    if not len(hit):
        return hit, np.zeros(0)
    areas = shapely.area(shapely.intersection(geoms[hit], polygon))
    keep = areas > tolerance_m2
    return hit[keep], areas[keep]


def check_parcel(
    source: Any,
    polygon: Any,
    *,
    exclude_plot_id: str | None = None,
    min_area_ha: float = MIN_AREA_HA,
    tolerance_m2: float = OVERLAP_TOLERANCE_M2,
) -> ParcelCheck:
    """Check a parcel outline against the zone, the plots and the protection zones.

    Parameters
    ----------
    source : mapping of layer name to GeoDataFrame, or Store
        A snapshot (``Store.snapshot()``) or a store, read by the parcel's bounds.
    polygon : shapely geometry
        The outline in the store's CRS (a one-part MultiPolygon counts as its polygon).
    exclude_plot_id : str, optional
        The plot being redrawn (it does not overlap itself).
    min_area_ha : float
        Smallest acceptable area, hectares.
    tolerance_m2 : float
        Overlaps and parts outside up to this area are ignored (digitising noise).

    Returns
    -------
    ParcelCheck
    """
    if (
        polygon is not None
        and shapely.get_type_id(polygon) == 6
        and shapely.get_num_geometries(polygon) == 1
    ):
        polygon = shapely.get_geometry(polygon, 0)
    if polygon is None or shapely.is_empty(polygon):
        return ParcelCheck(0.0, (ParcelProblem("empty", N_("nothing was drawn")),))
    if shapely.get_type_id(polygon) != 3:
        return ParcelCheck(
            0.0,
            (
                ParcelProblem(
                    "type",
                    N_("a {kind} was given; a parcel is one polygon"),
                    {"kind": polygon.geom_type},
                ),
            ),
            polygon=polygon,
        )
    if not polygon.is_valid:
        area = round(float(shapely.make_valid(polygon).area) / 10_000.0, 4)
        return ParcelCheck(
            area, (_invalid_problem(polygon, _source_epsg(source)),), polygon=polygon
        )

    area_m2 = float(polygon.area)
    area_ha = round(area_m2 / 10_000.0, 4)
    minx, miny, maxx, maxy = (float(b) for b in polygon.bounds)
    bounds = (minx, miny, maxx, maxy)
    problems: list[ParcelProblem] = []
    warnings: list[ParcelProblem] = []

    zone = _frame(source, "zone", None)
    expansion = _frame(source, "expansion", None)
    land = [g for f in (zone, expansion) if f is not None and len(f) for g in f.geometry.values]
    outside = float(polygon.difference(shapely.union_all(land)).area) if land else area_m2
    if outside > tolerance_m2:
        if outside >= area_m2 - tolerance_m2:
            problems.append(
                ParcelProblem(
                    "outside", N_("the parcel lies outside the zone and its expansion areas")
                )
            )
        else:
            problems.append(
                ParcelProblem(
                    "outside",
                    N_("{area} ha of the parcel lies outside the zone and its expansion areas"),
                    {"area": f"{outside / 10_000.0:.2f}"},
                )
            )

    plots = _frame(source, "plots", bounds)
    rows, areas = _overlapping(polygon, plots, tolerance_m2)
    if len(rows):
        ids = _ids(plots, "plot_id", rows)
        keep = [i for i, pid in enumerate(ids) if pid != exclude_plot_id]
        if keep:
            ids = tuple(ids[i] for i in keep)
            problems.append(
                ParcelProblem(
                    "overlaps_plot",
                    N_("overlaps existing plot(s) {ids} by {area} m²; draw it in free land"),
                    {
                        "ids": _shown(ids),
                        "area": f"{float(areas[keep].sum()):,.0f}".replace(",", " "),
                    },
                    ids,
                )
            )

    zones = _frame(source, "prot_zones", bounds)
    rows, areas = _overlapping(polygon, zones, tolerance_m2)
    if len(rows):
        ids = _ids(zones, "asset_id", rows)
        problems.append(
            ParcelProblem(
                "overlaps_protection",
                N_("overlaps protection zone(s) {ids} by {area} m²; nothing may be built there"),
                {"ids": _shown(ids), "area": f"{float(areas.sum()):,.0f}".replace(",", " ")},
                ids,
            )
        )

    if area_ha < min_area_ha:
        problems.append(
            ParcelProblem(
                "too_small",
                N_("{area} ha is too small: a plot needs at least {minimum} ha"),
                {"area": f"{area_ha:.2f}", "minimum": f"{min_area_ha:g}"},
            )
        )

    roads = _frame(source, "roads", bounds)
    if roads is not None and len(roads):
        geoms = np.asarray(roads.geometry.values, dtype=object)
        inside = shapely.length(shapely.intersection(geoms, polygon))
        hit = np.flatnonzero(inside > _ROAD_CROSSING_M)
        if len(hit):
            ids = _ids(roads, "asset_id", hit)
            warnings.append(
                ParcelProblem(
                    "crosses_road",
                    N_("crosses road(s) {ids}: leave the roadway out of the plot"),
                    {"ids": _shown(ids)},
                    ids,
                )
            )

    exp_id = None
    if expansion is not None and len(expansion):
        shares = shapely.area(
            shapely.intersection(np.asarray(expansion.geometry.values, dtype=object), polygon)
        )
        best = int(np.argmax(shares))
        if shares[best] > area_m2 / 2:
            exp_id = str(expansion["exp_id"].iloc[best])
    return ParcelCheck(area_ha, tuple(problems), tuple(warnings), exp_id, polygon)
