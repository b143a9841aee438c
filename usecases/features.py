"""OGC API - Features over the store: landing, conformance, collections, queryables and items.

Framework-free (pygeoapi's API core): an adapter hands in the role, the service's base URL
and the query parameters, and gets back plain dicts (GeoJSON, OGC documents) or a typed
:class:`OgcError` carrying its HTTP status. Every read goes through the access policy
(``planner.visibility``): the collections, rows and fields a role may see.

Parts implemented: 1 (Core, GeoJSON, HTML, OpenAPI 3.0), 2 (CRS by reference: CRS84,
EPSG:4326 and the storage CRS EPSG:32643) and 3 (queryables and simple property filters).
``numberMatched`` is one SQL ``count(*)`` over the R-tree and the attribute filter, cached per
layer revision, role view and query, so paging through a result pays it once.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

import numpy as np
import pandas as pd
import shapely

from geo.crs import WORKING_EPSG, transformer, working_crs
from geo.layers import LAYERS, SECTORS, Field, Layer
from geo.store import Invalid, ListHas, Range, Store
from planner import visibility

__all__ = [
    "CONFORMANCE",
    "CRS84",
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "SUPPORTED_CRS",
    "STORAGE_CRS",
    "OgcError",
    "InvalidParameter",
    "CollectionNotFound",
    "Forbidden",
    "ItemsQuery",
    "landing",
    "conformance",
    "collections",
    "collection",
    "queryables",
    "parse_items_query",
    "items",
    "item",
    "parse_crs",
    "readable_collections",
    "crs_uri",
    "api_definition",
    "ItemsPage",
    "features_json",
]

CONFORMANCE: tuple[str, ...] = (
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
)
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


def crs_uri(epsg: int) -> str:
    """The OGC URI of an EPSG code."""
    return f"http://www.opengis.net/def/crs/EPSG/0/{epsg}"


STORAGE_CRS = crs_uri(WORKING_EPSG)
# URI -> (EPSG code, whether the CRS's first axis is latitude): CRS84 is lon/lat,
# EPSG:4326 is lat/lon, the UTM storage CRS is easting/northing.
SUPPORTED_CRS: dict[str, tuple[int, bool]] = {
    CRS84: (4326, False),
    crs_uri(4326): (4326, True),
    STORAGE_CRS: (WORKING_EPSG, False),
}
_DECIMALS = {4326: 7}  # ~1 cm; metres get 3 (mm)
DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
FIXED_PARAMETERS = ("f", "limit", "offset", "bbox", "bbox-crs", "crs", "datetime")
# Layers with dates: the fields bounding a feature's time (start, end); equal for instants.
# An asset's status holds from ``since`` until ``due`` (either may be unknown: open).
TEMPORAL: dict[str, tuple[str, str]] = {
    **{name: ("since", "due") for name, layer in LAYERS.items() if layer.asset},
    "applications": ("created", "created"),
    "audit": ("at", "at"),
}
JSON_TYPES = {
    "str": "string",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "date": "string",
    "datetime": "string",
}
GEOMETRY_FORMATS = {
    "Polygon": "geometry-polygon",
    "LineString": "geometry-linestring",
    "Point": "geometry-point",
}
GEOJSON = "application/geo+json"
Cache = Callable[[Hashable, Callable[[], Any]], Any]


class OgcError(Exception):
    """A request the service refuses; ``status`` and ``code`` become the exception body."""

    status = 400
    code = "InvalidParameterValue"

    def __init__(self, description: str):
        super().__init__(description)
        self.description = description

    def body(self) -> dict[str, Any]:
        """The OGC exception document."""
        return {"code": self.code, "description": self.description}


class InvalidParameter(OgcError):
    """A query parameter is unknown, malformed or out of range (400)."""


class CollectionNotFound(OgcError):
    """No such collection or feature, or the role may not see it (404)."""

    status = 404
    code = "NotFound"


class MethodNotAllowed(OgcError):
    """The service is read-only: only GET (and HEAD, OPTIONS) on every /ogc path (405)."""

    status = 405
    code = "MethodNotAllowed"


class Forbidden(OgcError):
    """The collection is for planners; 401 for anonymous callers (so clients ask for
    credentials), 403 for signed-in ones."""

    code = "Forbidden"

    def __init__(self, description: str, *, anonymous: bool):
        super().__init__(description)
        self.status = 401 if anonymous else 403
        if anonymous:
            self.code = "Unauthorized"


# --------------------------------------------------------------------------- documents
def _link(href: str, rel: str, media: str, title: str) -> dict[str, str]:
    return {"href": href, "rel": rel, "type": media, "title": title}


def _url(base: str, path: str, **query: Any) -> str:
    query = {k: v for k, v in query.items() if v is not None}
    return f"{base}{path}" + (f"?{urlencode(query)}" if query else "")


def landing(base: str) -> dict[str, Any]:
    """The landing page: links to the API definition, conformance and collections."""
    return {
        "title": "Almaty Industrial Zone — zoneplan OGC API - Features",
        "description": "Plots, infrastructure networks and plan tables of the industrial zone "
        "(synthetic sample data). Sign in with HTTP Basic or a Bearer token for "
        "a planner's view.",
        "links": [
            _link(_url(base, "", f="json"), "self", "application/json", "This document"),
            _link(_url(base, "", f="html"), "alternate", "text/html", "This document as HTML"),
            _link(
                _url(base, "/api"),
                "service-desc",
                "application/vnd.oai.openapi+json;version=3.0",
                "The API definition",
            ),
            _link(
                _url(base, "/api", f="html"),
                "service-doc",
                "text/html",
                "The API definition as HTML",
            ),
            _link(
                _url(base, "/conformance"), "conformance", "application/json", "Conformance classes"
            ),
            _link(_url(base, "/collections"), "data", "application/json", "Collections"),
        ],
    }


def conformance() -> dict[str, Any]:
    """The conformance classes this service implements."""
    return {"conformsTo": list(CONFORMANCE)}


def readable_collections(role: str | None) -> list[str]:
    """The layers served as collections to ``role`` (the policy's readable layers)."""
    return visibility.readable_layers(role)


def _served() -> list[str]:
    """Every layer some role may read (the planners' list)."""
    return visibility.readable_layers("planner")


def _check_collection(name: str, role: str | None) -> Layer:
    if name not in _served():
        raise CollectionNotFound(
            f"no collection {name!r}; collections: {', '.join(readable_collections(role))}"
        )
    try:
        visibility.check_readable(name, role)
    except visibility.Forbidden as err:
        raise Forbidden(
            f"{err}; sign in (HTTP Basic or a Bearer token)", anonymous=role in (None, "public")
        ) from None
    return LAYERS[name]


def _spatial_extent(store: Store, layer: Layer) -> list[float] | None:
    box = store.extent(layer.name) if layer.is_feature else None
    if box is None:
        return None
    west, south, east, north = transformer(WORKING_EPSG, 4326).transform_bounds(*box)
    return [round(v, 7) for v in (west, south, east, north)]


def _temporal_extent(store: Store, layer: Layer, cache: Cache) -> list[str | None] | None:
    if layer.name not in TEMPORAL:
        return None
    start, end = TEMPORAL[layer.name]

    def build() -> list[str | None]:
        rows = store.read(layer.name)
        first, last = rows[start], rows[end]
        interval = start != end  # an unknown end of a status interval leaves it open
        return [
            None
            if first.isna().all() or (interval and first.isna().any())
            else _instant(first.dropna().min()),
            None
            if last.isna().all() or (interval and last.isna().any())
            else _instant(last.dropna().max()),
        ]

    return cache(("ogc-temporal", layer.name, _revision(store, layer.name)), build)


def _instant(text: str) -> str:
    """An ISO date or naive UTC datetime as RFC 3339."""
    return f"{text}T00:00:00Z" if len(text) == 10 else f"{text}Z"


def collection(
    store: Store, name: str, *, role: str | None, base: str, cache: Cache | None = None
) -> dict[str, Any]:
    """One collection's description: extent, CRS list, storage CRS and links.

    Raises
    ------
    CollectionNotFound, Forbidden
    """
    layer = _check_collection(name, role)
    cache = cache or _no_cache
    here = f"/collections/{name}"
    out: dict[str, Any] = {
        "id": name,
        "title": layer.label or name,
        "description": f"{layer.label or name} of the zone; feature id = {layer.key}"
        + (" (a table: features without geometry)" if not layer.is_feature else ""),
        "itemType": "feature",
        "links": [
            _link(_url(base, here, f="json"), "self", "application/json", "This collection"),
            _link(_url(base, here, f="html"), "alternate", "text/html", "This collection as HTML"),
            _link(_url(base, here + "/items", f="json"), "items", GEOJSON, "Features as GeoJSON"),
            _link(_url(base, here + "/items", f="html"), "items", "text/html", "Features as HTML"),
            _link(
                _url(base, here + "/queryables"),
                "http://www.opengis.net/def/rel/ogc/1.0/queryables",
                "application/schema+json",
                "Queryable properties",
            ),
        ],
        "crs": list(SUPPORTED_CRS) if layer.is_feature else [CRS84],
        "storageCrs": STORAGE_CRS if layer.is_feature else CRS84,
    }
    extent: dict[str, Any] = {}
    bbox = _spatial_extent(store, layer)
    if bbox is not None:
        extent["spatial"] = {"bbox": [bbox], "crs": CRS84}
    interval = _temporal_extent(store, layer, cache)
    if interval is not None:
        extent["temporal"] = {
            "interval": [interval],
            "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian",
        }
    if extent:
        out["extent"] = extent
    return out


def collections(
    store: Store, *, role: str | None, base: str, cache: Cache | None = None
) -> dict[str, Any]:
    """Every collection ``role`` may read."""
    return {
        "links": [
            _link(
                _url(base, "/collections", f="json"), "self", "application/json", "This document"
            ),
            _link(
                _url(base, "/collections", f="html"),
                "alternate",
                "text/html",
                "This document as HTML",
            ),
        ],
        "crs": list(SUPPORTED_CRS),
        "collections": [
            collection(store, name, role=role, base=base, cache=cache)
            for name in readable_collections(role)
        ],
    }


# --------------------------------------------------------------------------- queryables
def _fields(layer: Layer, role: str | None) -> list[Field]:
    """The fields ``role`` may see and filter on (store bookkeeping left out)."""
    visible = set(visibility.layer_fields(layer.name, role))
    return [f for f in layer.fields if f.name in visible and not f.system]


def _choices(layer: Layer, fld: Field, role: str | None) -> tuple[str, ...] | None:
    if layer.name == "plots" and fld.name == "status":
        return visibility.plot_view(role).statuses
    if layer.name == "plots" and fld.name == "sectors":
        return SECTORS
    return fld.choices


def _property_schema(layer: Layer, fld: Field, role: str | None) -> dict[str, Any]:
    schema: dict[str, Any] = {"title": fld.label or fld.name, "type": JSON_TYPES[fld.type]}
    if fld.type in ("date", "datetime"):
        schema["format"] = "date" if fld.type == "date" else "date-time"
    choices = _choices(layer, fld, role)
    if choices:
        schema["enum"] = list(choices)
    if fld.minimum is not None:
        schema["minimum"] = fld.minimum
    if fld.maximum is not None:
        schema["maximum"] = fld.maximum
    if layer.name == "plots" and fld.name == "sectors":
        schema["description"] = (
            "comma list of allowed sectors ('*' or empty: any); a filter "
            "value matches every plot whose list holds it"
        )
    return schema


def queryables(name: str, *, role: str | None, base: str) -> dict[str, Any]:
    """The JSON schema of the properties a role may filter ``name`` on (Part 3).

    Raises
    ------
    CollectionNotFound, Forbidden
    """
    layer = _check_collection(name, role)
    props: dict[str, Any] = {}
    if layer.geometry is not None:  # a feature layer
        props["geometry"] = {
            "format": GEOMETRY_FORMATS[layer.geometry],
            "x-ogc-role": "primary-geometry",
        }
    for fld in _fields(layer, role):
        props[fld.name] = _property_schema(layer, fld, role)
    return {
        "$schema": "https://json-schema.org/draft/2019-09/schema",
        "$id": _url(base, f"/collections/{name}/queryables"),
        "type": "object",
        "title": layer.label or name,
        "properties": props,
        "additionalProperties": False,
    }


# --------------------------------------------------------------------------- items query
@dataclass(frozen=True)
class ItemsQuery:
    """A validated items request.

    Attributes
    ----------
    limit, offset : int
        The page (``limit`` capped at ``MAX_LIMIT``).
    bbox : tuple of float or None
        In ``bbox_crs`` axis order, as given.
    bbox_crs, crs : str
        CRS URIs (``SUPPORTED_CRS``).
    datetime : tuple or None
        ``(start, end)`` naive UTC datetimes, either None when open.
    datetime_text : str or None
        ``datetime`` as given (for links).
    filters : tuple of (name, value)
        Typed property filters, as given.
    """

    limit: int = DEFAULT_LIMIT
    offset: int = 0
    bbox: tuple[float, ...] | None = None
    bbox_crs: str = CRS84
    crs: str = CRS84
    datetime: tuple[dt.datetime | None, dt.datetime | None] | None = None
    datetime_text: str | None = None
    filters: tuple[tuple[str, Any], ...] = ()

    def parameters(self, **changes: Any) -> dict[str, str]:
        """The query string of this request (with ``changes``), for links."""
        query = replace(self, **changes)
        out: dict[str, str] = {"limit": str(query.limit)}
        if query.offset:
            out["offset"] = str(query.offset)
        if query.bbox is not None:
            out["bbox"] = ",".join(f"{v:g}" for v in query.bbox)
            if query.bbox_crs != CRS84:
                out["bbox-crs"] = query.bbox_crs
        if query.crs != CRS84:
            out["crs"] = query.crs
        if query.datetime_text is not None:
            out["datetime"] = query.datetime_text
        for name, value in query.filters:
            out[name] = _text(value)
        return out


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _single(params: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = params.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise InvalidParameter(f"{name}: give it once (got {len(values)} values)")
    return values[0]


def _integer(text: str | None, name: str, default: int, minimum: int) -> int:
    if text is None:
        return default
    try:
        value = int(text.strip())
    except ValueError:
        raise InvalidParameter(f"{name}: {text!r} is not a whole number") from None
    if value < minimum:
        raise InvalidParameter(f"{name}: must be at least {minimum} (got {value})")
    return value


def _crs_param(text: str | None, name: str, layer: Layer) -> str:
    if text is None:
        return CRS84
    uri = text.strip().strip("[]<>")
    if uri.upper() in ("OGC:CRS84", "CRS84"):
        uri = CRS84
    elif uri.upper().startswith("EPSG:"):
        uri = crs_uri(int(uri[5:])) if uri[5:].isdigit() else uri
    if uri not in SUPPORTED_CRS or (not layer.is_feature and uri != CRS84):
        offered = list(SUPPORTED_CRS) if layer.is_feature else [CRS84]
        raise InvalidParameter(f"{name}: {text!r} is not offered; use one of {', '.join(offered)}")
    return uri


def _bbox_param(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise InvalidParameter(f"bbox: {text!r} is not 4 (or 6) comma-separated numbers") from None
    if len(values) not in (4, 6) or not all(math.isfinite(v) for v in values):
        raise InvalidParameter(f"bbox: {text!r} is not 4 (or 6) comma-separated finite numbers")
    if len(values) == 6:  # minx,miny,minz,maxx,maxy,maxz: heights do not matter here
        values = (values[0], values[1], values[3], values[4])
    if values[0] > values[2] or values[1] > values[3]:
        raise InvalidParameter(f"bbox: {text!r} has a lower corner above its upper corner")
    return values


def _moment(text: str, end: bool) -> dt.datetime | None:
    text = text.strip()
    if text in ("", ".."):
        return None
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            return dt.datetime.combine(day, dt.time.max if end else dt.time.min)
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidParameter(f"datetime: {text!r} is not an RFC 3339 date or date-time") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment


def _datetime_param(
    text: str | None, layer: Layer
) -> tuple[dt.datetime | None, dt.datetime | None] | None:
    if text is None:
        return None
    if layer.name not in TEMPORAL:
        raise InvalidParameter(f"datetime: {layer.name} has no dates to filter on")
    if "/" in text:
        first, _, second = text.partition("/")
        start, end = _moment(first, False), _moment(second, True)
        if first.strip() in ("", "..") and second.strip() in ("", ".."):
            raise InvalidParameter("datetime: an interval needs at least one end")
    else:
        start, end = _moment(text, False), _moment(text, True)
        if start is None:
            raise InvalidParameter("datetime: give a date, a date-time or an interval a/b")
    if start is not None and end is not None and start > end:
        raise InvalidParameter(f"datetime: {text!r} ends before it starts")
    return start, end


def _typed_filter(layer: Layer, fld: Field, text: str, role: str | None) -> Any:
    text = text.strip()
    try:
        if fld.type == "int":
            value: Any = int(text)
            if not -(2**63) <= value < 2**63:  # no stored integer is that large
                raise ValueError
        elif fld.type == "float":
            value = float(text)
            if not math.isfinite(value):
                raise ValueError
        elif fld.type == "bool":
            value = {"true": True, "false": False, "1": True, "0": False}[text.lower()]
        elif fld.type == "date":
            value = dt.date.fromisoformat(text).isoformat()
        elif fld.type == "datetime":
            value = _moment(text, False).isoformat(timespec="seconds")  # type: ignore[union-attr]
        else:
            value = text
    except (ValueError, KeyError, AttributeError):
        raise InvalidParameter(
            f"{fld.name}: {text!r} is not a {JSON_TYPES[fld.type]}"
            + (" (YYYY-MM-DD)" if fld.type == "date" else "")
        ) from None
    choices = _choices(layer, fld, role)
    if choices and value not in choices:
        raise InvalidParameter(f"{fld.name}: {text!r} is not one of {', '.join(choices)}")
    return value


def parse_items_query(
    name: str, params: Mapping[str, Sequence[str]], *, role: str | None
) -> ItemsQuery:
    """Validate an items request's parameters (each name mapped to its values).

    A ``limit`` above ``MAX_LIMIT`` is capped to it (the standard's rule); unknown
    parameters are refused, as Part 1 requires.

    Raises
    ------
    CollectionNotFound, Forbidden
        For the collection.
    InvalidParameter
        Naming the parameter at fault.
    """
    layer = _check_collection(name, role)
    queryable = {f.name: f for f in _fields(layer, role)}
    unknown = [k for k in params if k not in FIXED_PARAMETERS and k not in queryable]
    if unknown:
        raise InvalidParameter(
            f"unknown parameter {unknown[0]!r}; {name} takes "
            f"{', '.join(FIXED_PARAMETERS)} and its queryables "
            f"{', '.join(queryable)}"
        )
    fmt = _single(params, "f")
    if fmt is not None and fmt not in ("json", "html"):
        raise InvalidParameter(f"f: {fmt!r} is not json or html")
    bbox = _bbox_param(_single(params, "bbox"))
    if bbox is not None and not layer.is_feature:
        raise InvalidParameter(f"bbox: {name} is a table without geometry")
    when = _single(params, "datetime")
    filters = tuple(
        (k, _typed_filter(layer, queryable[k], _single(params, k) or "", role))
        for k in params
        if k in queryable
    )
    return ItemsQuery(
        limit=min(_integer(_single(params, "limit"), "limit", DEFAULT_LIMIT, 1), MAX_LIMIT),
        offset=_integer(_single(params, "offset"), "offset", 0, 0),
        bbox=bbox,
        bbox_crs=_crs_param(_single(params, "bbox-crs"), "bbox-crs", layer),
        crs=_crs_param(_single(params, "crs"), "crs", layer),
        datetime=_datetime_param(when, layer),
        datetime_text=when,
        filters=filters,
    )


# --------------------------------------------------------------------------- reading
def _no_cache(_key: Hashable, build: Callable[[], Any]) -> Any:
    return build()


def _revision(store: Store, name: str) -> str:
    return store.revision([name])


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
    names = [f.name for f in _fields(layer, role)]
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
    layer = _check_collection(name, role)
    cache = cache or _no_cache
    box = _working_bbox(query)
    where = _where(layer, query, role)
    try:
        if box is not None and not box:  # outside the storage CRS's area: nothing matches
            matched, rows = 0, pd.DataFrame()
        else:
            key = ("ogc-count", name, _revision(store, name), box, _cache_key(where))
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
        _link(_url(base, path, **query.parameters(), f="json"), "self", GEOJSON, "This page"),
        _link(
            _url(base, path, **query.parameters(), f="html"),
            "alternate",
            "text/html",
            "This page as HTML",
        ),
        _link(
            _url(base, f"/collections/{name}"), "collection", "application/json", "The collection"
        ),
    ]
    if query.offset + query.limit < matched:
        links.append(
            _link(
                _url(base, path, **query.parameters(offset=query.offset + query.limit), f="json"),
                "next",
                GEOJSON,
                "Next page",
            )
        )
    if query.offset:
        links.append(
            _link(
                _url(
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
    layer = _check_collection(name, role)
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
        _link(_url(base, path, f="json"), "self", GEOJSON, "This feature"),
        _link(_url(base, path, f="html"), "alternate", "text/html", "This feature as HTML"),
        _link(
            _url(base, f"/collections/{name}"), "collection", "application/json", "The collection"
        ),
    ]
    return text[:-1] + ',"links":%s}' % json.dumps(links)


def parse_crs(name: str, params: Mapping[str, Sequence[str]], *, role: str | None) -> str:
    """The ``crs`` of a single-feature request (its only parameters are ``crs`` and ``f``).

    Raises
    ------
    InvalidParameter, CollectionNotFound, Forbidden
    """
    layer = _check_collection(name, role)
    unknown = [k for k in params if k not in ("f", "crs")]
    if unknown:
        raise InvalidParameter(f"unknown parameter {unknown[0]!r}; a feature takes f and crs")
    fmt = _single(params, "f")
    if fmt is not None and fmt not in ("json", "html"):
        raise InvalidParameter(f"f: {fmt!r} is not json or html")
    return _crs_param(_single(params, "crs"), "crs", layer)


# --------------------------------------------------------------------------- API definition
_EXCEPTION = {"$ref": "#/components/schemas/exception"}
_STATUS_TEXT = {
    "200": "OK",
    "400": "A parameter is unknown, malformed or out of range",
    "401": "The collection needs credentials (HTTP Basic or a Bearer token)",
    "403": "Your role may not read this collection",
    "404": "No such collection or feature",
}


def _param(name: str, schema: dict[str, Any], description: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
        **extra,
    }


def _answers(schema: dict[str, Any], media: str, errors: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "200": {
            "description": _STATUS_TEXT["200"],
            "content": {media: {"schema": schema}, "text/html": {"schema": {"type": "string"}}},
        }
    }
    for code in errors:
        out[code] = {
            "description": _STATUS_TEXT[code],
            "content": {"application/json": {"schema": _EXCEPTION}},
        }
    return out


def _operation(
    op_id: str,
    summary: str,
    tag: str,
    parameters: list[dict[str, Any]],
    responses: dict[str, Any],
    description: str = "",
) -> dict[str, Any]:
    out = {
        "operationId": op_id,
        "summary": summary,
        "tags": [tag],
        "parameters": [{"$ref": "#/components/parameters/f"}, *parameters],
        "responses": responses,
    }
    if description:
        out["description"] = description
    return out


def _collection_paths(layer: Layer) -> dict[str, Any]:
    name = layer.name
    staff_only = not layer.public
    errors = ["400", "401", "403", "404"] if staff_only else ["400", "404"]
    note = " Planners only: send HTTP Basic credentials or a Bearer token." if staff_only else ""
    crs_names = list(SUPPORTED_CRS) if layer.is_feature else [CRS84]
    crs_param = {"type": "string", "enum": crs_names, "default": CRS84}
    filters = [
        _param(
            f.name,
            {k: v for k, v in _property_schema(layer, f, "planner").items() if k != "title"},
            f"{f.label or f.name} equals this value"
            + (" (the list holds it)" if (name, f.name) == ("plots", "sectors") else "")
            + (
                " (others' fields: planners only)"
                if name == "plots" and f.name in visibility.HIDDEN_PLOT_FIELDS
                else ""
            ),
        )
        for f in _fields(layer, "planner")
    ]
    items_params = [
        _param(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
            f"Features per page (larger values are capped at {MAX_LIMIT})",
        ),
        _param(
            "offset",
            {"type": "integer", "minimum": 0, "default": 0},
            "Features to skip (past the end: an empty page)",
        ),
    ]
    if layer.is_feature:
        items_params += [
            _param(
                "bbox",
                {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}},
                "minx,miny,maxx,maxy in bbox-crs (default CRS84 lon/lat)",
                style="form",
                explode=False,
            ),
            _param("bbox-crs", crs_param, "CRS of bbox"),
        ]
    items_params.append(
        _param("crs", crs_param, "CRS of the answer's geometries (the Content-Crs header names it)")
    )
    if name in TEMPORAL:
        first, last = TEMPORAL[name]
        what = first if first == last else f"the interval {first}..{last} (unknown ends open)"
        items_params.append(
            _param(
                "datetime",
                {"type": "string"},
                f"RFC 3339 date, date-time or interval a/b (.. open): "
                f"features whose {what} meets it",
            )
        )
    base = f"/collections/{name}"
    tag = "data"
    return {
        base: {
            "get": _operation(
                f"describe_{name}",
                f"{layer.label or name}: the collection",
                tag,
                [],
                _answers({"$ref": "#/components/schemas/collection"}, "application/json", errors),
                note.strip(),
            )
        },
        base + "/queryables": {
            "get": _operation(
                f"queryables_{name}",
                f"{layer.label or name}: queryable properties",
                tag,
                [],
                _answers({"type": "object"}, "application/schema+json", errors),
                note.strip(),
            )
        },
        base + "/items": {
            "get": _operation(
                f"items_{name}",
                f"{layer.label or name}: features",
                tag,
                items_params + filters,
                _answers({"$ref": "#/components/schemas/featureCollection"}, GEOJSON, errors),
                ("Unknown parameters are refused (400)." + note),
            )
        },
        base + "/items/{featureId}": {
            "get": _operation(
                f"item_{name}",
                f"{layer.label or name}: one feature by {layer.key}",
                tag,
                [
                    {
                        "name": "featureId",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                    _param("crs", crs_param, "CRS of the geometry"),
                ],
                _answers({"$ref": "#/components/schemas/feature"}, GEOJSON, errors),
                note.strip(),
            )
        },
    }


def api_definition(base: str) -> dict[str, Any]:
    """The OpenAPI 3.0 document of this service (every collection's paths and queryables)."""
    link = {
        "type": "object",
        "required": ["href"],
        "properties": {
            "href": {"type": "string"},
            "rel": {"type": "string"},
            "type": {"type": "string"},
            "title": {"type": "string"},
        },
    }
    feature = {
        "type": "object",
        "required": ["type", "geometry", "properties"],
        "properties": {
            "type": {"type": "string", "enum": ["Feature"]},
            "id": {"type": "string"},
            "geometry": {"type": "object", "nullable": True},
            "properties": {"type": "object", "nullable": True},
            "links": {"type": "array", "items": link},
        },
    }
    paths: dict[str, Any] = {
        "/": {
            "get": _operation(
                "landing",
                "Landing page",
                "capabilities",
                [],
                _answers({"$ref": "#/components/schemas/landing"}, "application/json", ["400"]),
            )
        },
        "/conformance": {
            "get": _operation(
                "conformance",
                "Conformance classes",
                "capabilities",
                [],
                _answers(
                    {"type": "object", "required": ["conformsTo"]}, "application/json", ["400"]
                ),
            )
        },
        "/collections": {
            "get": _operation(
                "collections",
                "Collections you may read",
                "capabilities",
                [],
                _answers(
                    {"type": "object", "required": ["collections"]}, "application/json", ["400"]
                ),
            )
        },
    }
    for name in _served():
        paths.update(_collection_paths(LAYERS[name]))
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "zoneplan OGC API - Features",
            "version": "1.0.0",
            "description": "Every layer of the zone store as OGC API - Features "
            "collections (Parts 1, 2 and 3). Anonymous callers see every "
            "plot but candidates, without occupants' details; planners see "
            'everything. Errors are {"code", "description"}.',
            "license": {"name": "MIT"},
        },
        "servers": [{"url": base}],
        "security": [{}, {"basicAuth": []}, {"bearerAuth": []}],
        "paths": paths,
        "components": {
            "parameters": {
                "f": _param(
                    "f",
                    {"type": "string", "enum": ["json", "html"]},
                    "Answer format (default: JSON unless Accept prefers text/html)",
                )
            },
            "schemas": {
                "exception": {
                    "type": "object",
                    "required": ["code"],
                    "properties": {"code": {"type": "string"}, "description": {"type": "string"}},
                },
                "link": link,
                "landing": {
                    "type": "object",
                    "required": ["links"],
                    "properties": {
                        "title": {"type": "string"},
                        "description": {"type": "string"},
                        "links": {"type": "array", "items": link},
                    },
                },
                "collection": {
                    "type": "object",
                    "required": ["id", "links"],
                    "properties": {
                        "id": {"type": "string"},
                        "title": {"type": "string"},
                        "links": {"type": "array", "items": link},
                        "crs": {"type": "array", "items": {"type": "string"}},
                        "storageCrs": {"type": "string"},
                    },
                },
                "feature": feature,
                "featureCollection": {
                    "type": "object",
                    "required": ["type", "features"],
                    "properties": {
                        "type": {"type": "string", "enum": ["FeatureCollection"]},
                        "features": {"type": "array", "items": feature},
                        "numberMatched": {"type": "integer", "minimum": 0},
                        "numberReturned": {"type": "integer", "minimum": 0},
                        "timeStamp": {"type": "string", "format": "date-time"},
                        "links": {"type": "array", "items": link},
                    },
                },
            },
            "securitySchemes": {
                "basicAuth": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "A zoneplan account (for desktop GIS)",
                },
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A user's API token (`zoneplan user token NAME`)",
                },
            },
        },
    }
