"""Reading features: a page of a collection's items, or one item, as GeoJSON text."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import shapely

from geo.crs import WORKING_EPSG, transformer, working_crs
from geo.layers import Layer
from geo.store import Invalid, ListHas, Range, Store
from planner import visibility
from usecases.ogc.errors import CollectionNotFound, InvalidParameter
from usecases.ogc.metadata import (
    CRS84,
    GEOJSON,
    SUPPORTED_CRS,
    TEMPORAL,
    Cache,
    check_collection,
    link,
    no_cache,
    revision,
    url,
    visible_fields,
)
from usecases.ogc.queries import ItemsQuery

_DECIMALS = {4326: 7}  # ~1 cm; metres get 3 (mm)


def _working_bbox(
    query: ItemsQuery,
) -> tuple[float, float, float, float] | tuple[()] | None:
    """The bbox in the storage CRS; ``()`` when it lies outside where that CRS is usable."""
    if query.bbox is None:
        return None
    epsg, lat_first = SUPPORTED_CRS[query.bbox_crs]
    x0, y0, x1, y1 = query.bbox
    if lat_first:
        x0, y0, x1, y1 = y0, x0, y1, x1
    if epsg == WORKING_EPSG:
        return (x0, y0, x1, y1)
    area = working_crs().area_of_use
    if area is not None:
        x0, y0, x1, y1 = (
            max(x0, area.west),
            max(y0, area.south),
            min(x1, area.east),
            min(y1, area.north),
        )
        if x0 > x1 or y0 > y1:
            return ()
    west, south, east, north = transformer(epsg, WORKING_EPSG).transform_bounds(x0, y0, x1, y1)
    return west, south, east, north


def _where(layer: Layer, query: ItemsQuery, role: str | None) -> dict[str, Any]:
    where: dict[str, Any] = {}
    if layer.name == "plots":
        where.update(visibility.plot_view(role).where() or {})
    for name, value in query.filters:
        if layer.name == "plots" and name == "sectors":
            where[name] = ListHas(value)
        else:
            where[name] = [value]  # a status the role may see (checked against its choices)
    if query.datetime is not None:
        start, end = query.datetime
        first, last = TEMPORAL[layer.name]

        def as_text(moment: dt.datetime | None) -> str | None:
            if moment is None:
                return None
            if layer.field(first).type == "date":
                return moment.date().isoformat()
            return moment.isoformat(timespec="seconds")

        if first in where or last in where:
            raise InvalidParameter(f"datetime: give either datetime or a {first}/{last} filter")
        if first == last:
            where[first] = Range(as_text(start), as_text(end))
        else:  # the status interval [since, due] meets [start, end]; unknown ends are open
            where[first] = Range(high=as_text(end), or_null=True)
            where[last] = Range(low=as_text(start), or_null=True)
    return where


def _cache_key(where: Mapping[str, Any]) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in where.items()))


def _project(geoms: np.ndarray, crs: str) -> np.ndarray:
    epsg, lat_first = SUPPORTED_CRS[crs]
    decimals = _DECIMALS.get(epsg, 3)
    if epsg == WORKING_EPSG:
        return shapely.transform(geoms, lambda xy: np.round(xy, decimals))
    tr = transformer(WORKING_EPSG, epsg)

    def project(xy: np.ndarray) -> np.ndarray:
        x, y = tr.transform(xy[:, 0], xy[:, 1])
        out = np.column_stack([y, x] if lat_first else [x, y])
        return np.round(out, decimals)

    return shapely.transform(geoms, project)


def _plain(value: Any) -> Any:
    """A JSON-ready scalar: None for every missing marker, Python numbers for numpy ones."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _plain_records(frame: pd.DataFrame, names: list[str]) -> list[dict[str, Any]]:
    columns = [[_plain(v) for v in frame[name].tolist()] for name in names]
    return [dict(zip(names, row)) for row in zip(*columns)]


def features_json(layer: Layer, rows: pd.DataFrame, *, role: str | None, crs: str) -> list[str]:
    """Each row as the text of a GeoJSON Feature (id = the layer's key), in ``crs``."""
    if rows.empty:
        return []
    names = [f.name for f in visible_fields(layer, role)]
    records = _plain_records(rows, names)
    if layer.is_feature:
        geoms = _project(np.asarray(rows.geometry.values, dtype=object), crs)
        geometry = ["null" if g is None else g for g in shapely.to_geojson(geoms)]
    else:
        geometry = ["null"] * len(records)
    key = layer.key
    return [
        '{"type":"Feature","id":%s,"geometry":%s,"properties":%s}'
        % (json.dumps(str(record[key])), geom, json.dumps(record, ensure_ascii=False))
        for record, geom in zip(records, geometry)
    ]


@dataclass(frozen=True)
class ItemsPage:
    """One page of items: the GeoJSON text of each feature and the paging facts."""

    layer: str
    query: ItemsQuery
    matched: int
    features: list[str]
    links: list[dict[str, str]]
    crs: str

    def geojson(self, *, timestamp: str | None = None) -> str:
        """The FeatureCollection as JSON text."""
        stamp = timestamp or dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        return (
            '{"type":"FeatureCollection","features":[%s],"numberMatched":%d,'
            '"numberReturned":%d,"timeStamp":%s,"links":%s}'
            % (
                ",".join(self.features),
                self.matched,
                len(self.features),
                json.dumps(stamp.replace("+00:00", "Z")),
                json.dumps(self.links),
            )
        )

    def as_dict(self) -> dict[str, Any]:
        """The FeatureCollection as a dict (for HTML pages and tests)."""
        return json.loads(self.geojson())


def items(
    store: Store,
    name: str,
    query: ItemsQuery,
    *,
    role: str | None,
    base: str,
    cache: Cache | None = None,
) -> ItemsPage:
    """One page of a collection's features as the role sees them, in ``query.crs``.

    Rows come in key order (stable pages) from the store's R-tree and attribute filters,
    then the exact test of each geometry against the box (a feature whose bounding box
    meets the box but whose geometry does not is left out);
    ``numberMatched`` is the store's count of the same query, cached per layer revision.

    Raises
    ------
    CollectionNotFound, Forbidden, InvalidParameter
    """
    layer = check_collection(name, role)
    cache = cache or no_cache
    box = _working_bbox(query)
    where = _where(layer, query, role)
    try:
        if box is not None and not box:  # outside the storage CRS's area: nothing matches
            matched, rows = 0, pd.DataFrame()
        else:
            key = ("ogc-count", name, revision(store, name), box, _cache_key(where))
            matched = cache(key, lambda: store.count(name, bbox=box, where=where, exact=True))
            rows = (
                store.read(
                    name,
                    bbox=box,
                    where=where,
                    limit=query.limit,
                    offset=query.offset,
                    exact=True,
                )
                if query.offset < matched
                else pd.DataFrame()
            )
    except Invalid as err:  # a filter value the store's schema refuses (e.g. a malformed id)
        raise InvalidParameter(str(err)) from None
    features = features_json(layer, rows, role=role, crs=query.crs)
    return ItemsPage(
        name, query, matched, features, _page_links(base, name, query, matched), query.crs
    )


def _page_links(base: str, name: str, query: ItemsQuery, matched: int) -> list[dict[str, str]]:
    path = f"/collections/{name}/items"
    links = [
        link(url(base, path, **query.parameters(), f="json"), "self", GEOJSON, "This page"),
        link(
            url(base, path, **query.parameters(), f="html"),
            "alternate",
            "text/html",
            "This page as HTML",
        ),
        link(url(base, f"/collections/{name}"), "collection", "application/json", "The collection"),
    ]
    if query.offset + query.limit < matched:
        links.append(
            link(
                url(base, path, **query.parameters(offset=query.offset + query.limit), f="json"),
                "next",
                GEOJSON,
                "Next page",
            )
        )
    if query.offset:
        links.append(
            link(
                url(
                    base,
                    path,
                    **query.parameters(offset=max(0, min(query.offset, matched) - query.limit)),
                    f="json",
                ),
                "prev",
                GEOJSON,
                "Previous page",
            )
        )
    return links


def item(
    store: Store, name: str, feature_id: str, *, role: str | None, base: str, crs: str = CRS84
) -> str:
    """One feature as GeoJSON text (with links), in ``crs``.

    Raises
    ------
    CollectionNotFound
        For an unknown feature, or one the role may not see (they look alike).
    Forbidden
        For a collection the role may not read.
    """
    layer = check_collection(name, role)
    key: Any = feature_id
    if layer.field(layer.key).type == "int":
        if not feature_id.strip().lstrip("-").isdigit():
            raise CollectionNotFound(f"no feature {feature_id!r} in {name}")
        key = int(feature_id)
    where: dict[str, Any] = {layer.key: [key]}
    if layer.name == "plots":
        where.update(visibility.plot_view(role).where() or {})
    try:
        rows = store.read(name, where=where)
    except Invalid:  # an id no feature can have
        rows = pd.DataFrame()
    if rows.empty:
        raise CollectionNotFound(f"no feature {feature_id!r} in {name}")
    text = features_json(layer, rows, role=role, crs=crs)[0]
    path = f"/collections/{name}/items/{feature_id}"
    links = [
        link(url(base, path, f="json"), "self", GEOJSON, "This feature"),
        link(url(base, path, f="html"), "alternate", "text/html", "This feature as HTML"),
        link(url(base, f"/collections/{name}"), "collection", "application/json", "The collection"),
    ]
    return text[:-1] + ',"links":%s}' % json.dumps(links)
