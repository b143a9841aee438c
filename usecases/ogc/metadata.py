"""What the OGC service offers: CRSs, limits, collections, their extents and queryables."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any
from urllib.parse import urlencode

from geo.crs import WORKING_EPSG, transformer
from geo.layers import LAYERS, SECTORS, Field, Layer
from geo.store import Store
from planner import visibility
from usecases.ogc.errors import CollectionNotFound, Forbidden

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
DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
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


def no_cache(_key: Hashable, build: Callable[[], Any]) -> Any:
    """Build every time: the cache used when the caller passes none."""
    return build()


def revision(store: Store, name: str) -> str:
    """The layer's revision in the store (part of every cache key)."""
    return store.revision([name])


# --------------------------------------------------------------------------- documents
def link(href: str, rel: str, media: str, title: str) -> dict[str, str]:
    """One OGC link object."""
    return {"href": href, "rel": rel, "type": media, "title": title}


def url(base: str, path: str, **query: Any) -> str:
    """An address under the service's base URL, with the query parameters that are set."""
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
            link(url(base, "", f="json"), "self", "application/json", "This document"),
            link(url(base, "", f="html"), "alternate", "text/html", "This document as HTML"),
            link(
                url(base, "/api"),
                "service-desc",
                "application/vnd.oai.openapi+json;version=3.0",
                "The API definition",
            ),
            link(
                url(base, "/api", f="html"),
                "service-doc",
                "text/html",
                "The API definition as HTML",
            ),
            link(
                url(base, "/conformance"), "conformance", "application/json", "Conformance classes"
            ),
            link(url(base, "/collections"), "data", "application/json", "Collections"),
        ],
    }


def conformance() -> dict[str, Any]:
    """The conformance classes this service implements."""
    return {"conformsTo": list(CONFORMANCE)}


def readable_collections(role: str | None) -> list[str]:
    """The layers served as collections to ``role`` (the policy's readable layers)."""
    return visibility.readable_layers(role)


def served() -> list[str]:
    """Every layer some role may read (the planners' list)."""
    return visibility.readable_layers("planner")


def check_collection(name: str, role: str | None) -> Layer:
    """The layer of a collection ``role`` may read.

    Raises
    ------
    CollectionNotFound
        For a layer no role may read.
    Forbidden
        For one the role may not read.
    """
    if name not in served():
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

    return cache(("ogc-temporal", layer.name, revision(store, layer.name)), build)


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
    layer = check_collection(name, role)
    cache = cache or no_cache
    here = f"/collections/{name}"
    out: dict[str, Any] = {
        "id": name,
        "title": layer.label or name,
        "description": f"{layer.label or name} of the zone; feature id = {layer.key}"
        + (" (a table: features without geometry)" if not layer.is_feature else ""),
        "itemType": "feature",
        "links": [
            link(url(base, here, f="json"), "self", "application/json", "This collection"),
            link(url(base, here, f="html"), "alternate", "text/html", "This collection as HTML"),
            link(url(base, here + "/items", f="json"), "items", GEOJSON, "Features as GeoJSON"),
            link(url(base, here + "/items", f="html"), "items", "text/html", "Features as HTML"),
            link(
                url(base, here + "/queryables"),
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
            link(url(base, "/collections", f="json"), "self", "application/json", "This document"),
            link(
                url(base, "/collections", f="html"),
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
def visible_fields(layer: Layer, role: str | None) -> list[Field]:
    """The fields ``role`` may see and filter on (store bookkeeping left out)."""
    visible = set(visibility.layer_fields(layer.name, role))
    return [f for f in layer.fields if f.name in visible and not f.system]


def allowed_values(layer: Layer, fld: Field, role: str | None) -> tuple[str, ...] | None:
    """The values ``role`` may give for a field (None: any value of its type)."""
    if layer.name == "plots" and fld.name == "status":
        return visibility.plot_view(role).statuses
    if layer.name == "plots" and fld.name == "sectors":
        return SECTORS
    return fld.choices


def property_schema(layer: Layer, fld: Field, role: str | None) -> dict[str, Any]:
    """The JSON schema of one property as ``role`` sees it (queryables, API definition)."""
    schema: dict[str, Any] = {"title": fld.label or fld.name, "type": JSON_TYPES[fld.type]}
    if fld.type in ("date", "datetime"):
        schema["format"] = "date" if fld.type == "date" else "date-time"
    choices = allowed_values(layer, fld, role)
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
    layer = check_collection(name, role)
    props: dict[str, Any] = {}
    if layer.geometry is not None:  # a feature layer
        props["geometry"] = {
            "format": GEOMETRY_FORMATS[layer.geometry],
            "x-ogc-role": "primary-geometry",
        }
    for fld in visible_fields(layer, role):
        props[fld.name] = property_schema(layer, fld, role)
    return {
        "$schema": "https://json-schema.org/draft/2019-09/schema",
        "$id": url(base, f"/collections/{name}/queryables"),
        "type": "object",
        "title": layer.label or name,
        "properties": props,
        "additionalProperties": False,
    }
