"""The OpenAPI 3.0 definition of the OGC service (every collection's paths and queryables)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from geo.layers import LAYERS, Layer
from planner import visibility
from usecases.ogc.metadata import (
    CRS84,
    DEFAULT_LIMIT,
    GEOJSON,
    MAX_LIMIT,
    SUPPORTED_CRS,
    TEMPORAL,
    property_schema,
    served,
    visible_fields,
)

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
            {k: v for k, v in property_schema(layer, f, "planner").items() if k != "title"},
            f"{f.label or f.name} equals this value"
            + (" (the list holds it)" if (name, f.name) == ("plots", "sectors") else "")
            + (
                " (others' fields: planners only)"
                if name == "plots" and f.name in visibility.HIDDEN_PLOT_FIELDS
                else ""
            ),
        )
        for f in visible_fields(layer, "planner")
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
    for name in served():
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
