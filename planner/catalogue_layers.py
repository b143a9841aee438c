"""Pages of any layer as WGS84 GeoJSON, and the geometry helpers the catalogue shares
(see :mod:`planner.catalogue`, which re-exports them)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import shapely

from geo.crs import WEB_DECIMALS, WGS84_EPSG, crs_of, transformer
from geo.layers import LAYERS
from geo.store import Store
from geo.values import plain
from planner.visibility import check_readable, layer_fields, plot_view, readable_layers

if TYPE_CHECKING:
    from planner.catalogue import LayerQuery

__all__ = [
    "Box",
    "working_bbox",
    "to_geojson_geometries",
    "geojson_fragments",
    "layer_where",
    "layer_summary",
    "layer_collection",
]

Box = tuple[float, float, float, float]


@lru_cache(maxsize=8)
def _use_area(epsg: int) -> tuple[float, float, float, float]:
    area = crs_of(epsg).area_of_use
    return (area.west, area.south, area.east, area.north) if area else (-180, -90, 180, 90)


def working_bbox(bbox: Box | None, epsg: int) -> Box | tuple[()] | None:
    """A WGS84 bbox in CRS ``epsg`` (the store's), clipped to where that CRS is usable.

    Returns None for no bbox, and an empty tuple when the box lies wholly
    outside the working CRS's area of use (nothing can match).
    """
    if bbox is None:
        return None
    w, s, e, n = _use_area(epsg)
    clipped = (max(bbox[0], w), max(bbox[1], s), min(bbox[2], e), min(bbox[3], n))
    if clipped[0] > clipped[2] or clipped[1] > clipped[3]:
        return ()
    west, south, east, north = transformer(WGS84_EPSG, epsg).transform_bounds(*clipped)
    return west, south, east, north


def to_geojson_geometries(
    geoms: Iterable[Any], *, epsg: int, decimals: int = WEB_DECIMALS
) -> list[dict[str, Any] | None]:
    """GeoJSON geometry objects in WGS84 (rounded to ``decimals``) for geometries in CRS
    ``epsg`` (the store's)."""
    return [None if t is None else orjson.loads(t) for t in _geojson(geoms, epsg, decimals)]


def geojson_fragments(
    geoms: Iterable[Any], *, epsg: int, decimals: int = WEB_DECIMALS
) -> list[orjson.Fragment | None]:
    """Like :func:`to_geojson_geometries`, each geometry as its GeoJSON text in an
    ``orjson.Fragment``: for answers orjson encodes, which then copy the text as it is
    instead of parsing it and encoding it again."""
    return [None if t is None else orjson.Fragment(t) for t in _geojson(geoms, epsg, decimals)]


def _geojson(geoms: Iterable[Any], epsg: int, decimals: int) -> list[str | None]:
    arr = np.asarray(list(geoms) if not isinstance(geoms, np.ndarray) else geoms, dtype=object)
    if len(arr) == 0:
        return []
    tr = transformer(epsg, WGS84_EPSG)

    def project(xy: np.ndarray) -> np.ndarray:
        x, y = tr.transform(xy[:, 0], xy[:, 1])
        return np.round(np.column_stack([x, y]), decimals)

    return list(shapely.to_geojson(shapely.transform(arr, project)))


def layer_where(name: str, role: str | None) -> dict[str, Any] | None:
    """The row filter a role's view of a layer implies (see :mod:`planner.visibility`)."""
    return plot_view(role).where() if name == "plots" else None


def layer_summary(store: Store, role: str | None) -> list[dict[str, Any]]:
    """Name, label, geometry type, count (as the role sees it) and public flag of each layer."""
    out = []
    for name in readable_layers(role):
        layer = LAYERS[name]
        out.append(
            {
                "name": name,
                "label": layer.label,
                "geometry": layer.geometry,
                "count": store.count(name, where=layer_where(name, role)),
                "public": layer.public,
                "asset": layer.asset,
            }
        )
    return out


def layer_collection(
    store: Store, name: str, query: LayerQuery, *, role: str | None = None
) -> dict[str, Any]:
    """One page of a layer as a WGS84 GeoJSON FeatureCollection (tables: null geometries).

    Raises
    ------
    NotFound, Forbidden
        See :func:`check_readable`. A bbox on a table matches nothing (as in OGC API
        Features, only features whose geometry meets the box are selected).
    """
    check_readable(name, role)
    layer = LAYERS[name]
    bbox = working_bbox(query.bbox, store.epsg)
    if query.bbox is not None and not layer.is_feature:
        bbox = ()
    where = layer_where(name, role)
    if bbox is not None and not bbox:  # nothing can match
        matched, rows = 0, None
    else:
        matched = store.count(name, bbox=bbox, where=where)
        rows = store.read(name, bbox=bbox, where=where, limit=query.limit, offset=query.offset)
    features = []
    if rows is not None and len(rows):
        geoms = (
            to_geojson_geometries(rows.geometry.values, epsg=store.epsg, decimals=query.decimals)
            if layer.is_feature
            else [None] * len(rows)
        )
        names = layer_fields(name, role)
        for record, geom in zip(rows[names].to_dict("records"), geoms):
            props = {k: plain(v) for k, v in record.items()}
            features.append(
                {
                    "type": "Feature",
                    "id": str(props[layer.key]),
                    "geometry": geom,
                    "properties": props,
                }
            )
    return {
        "type": "FeatureCollection",
        "numberMatched": matched,
        "numberReturned": len(features),
        "timeStamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "features": features,
    }
