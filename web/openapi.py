"""OpenAPI 3.1 for /api, generated from the endpoint registry and the pydantic models the
endpoints validate with (so the document cannot drift from the code).

Every JSON endpoint is declared once with :func:`web.api.endpoint`, which records an
:class:`Endpoint` here; modules that add endpoints later (e.g. ``web/api_edit.py``)
use the same decorator and are documented the same way.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

from pydantic import BaseModel, Field
from pydantic.json_schema import JsonSchemaMode, models_json_schema

OPENAPI_VERSION = "3.1.0"
REF = "#/components/schemas/{model}"
STATUS_TEXT = {
    200: "OK",
    201: "Created",
    400: "Malformed or out-of-range parameter",
    401: "Authentication required (log in, or send a Bearer token)",
    403: "Your role may not do this",
    404: "Not found",
    409: "Conflict with the current state (stale version, plot taken, wrong status)",
    413: "Body or upload too large",
    422: "The body breaks the rules (each field named)",
    503: "A planner service is not available in this installation",
}


@dataclass(frozen=True)
class Endpoint:
    """One operation of the API, as documented and as validated.

    Attributes
    ----------
    method : str
        Lower-case HTTP method.
    path : str
        OpenAPI path under ``/api`` (``/plots/{plot_id}``).
    summary, description : str
    tag : str
        Group in the listing.
    query : pydantic model, optional
        Query parameters (each field one parameter).
    body : pydantic model, optional
        JSON request body.
    body_required : bool
    form : dict, optional
        A ``multipart/form-data`` body's JSON schema (file uploads).
    response : pydantic model, optional
        JSON success body; None with ``media`` for files.
    status : int
        Success status.
    media : str or tuple of str
        Success media type(s); files (no ``response`` model) may have several.
    roles : tuple of str
        Who may call it (``public`` for anyone).
    path_params : dict
        JSON schema of each path parameter.
    errors : tuple of int
        Error statuses the operation may answer besides the automatic ones
        (401/403 for restricted roles, 404 with path parameters, 400 with a
        query, 400/413/422 with a body).
    """

    method: str
    path: str
    summary: str
    tag: str
    description: str = ""
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    body_required: bool = True
    form: dict[str, Any] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    media: str | tuple[str, ...] = "application/json"
    roles: tuple[str, ...] = ("public",)
    path_params: dict[str, dict[str, Any]] = dc_field(default_factory=dict)
    errors: tuple[int, ...] = ()

    @property
    def operation_id(self) -> str:
        parts = [p.strip("{}").replace(".", "_") for p in self.path.split("/") if p]
        return "_".join([self.method, *parts])

    @property
    def public(self) -> bool:
        return "public" in self.roles

    def error_statuses(self) -> list[int]:
        codes = set(self.errors)
        if not self.public:
            codes |= {401, 403}
        if self.path_params:
            codes.add(404)
        if self.query is not None:
            codes.add(400)
        if self.body is not None or self.form is not None:
            codes |= {400, 413, 422}
        return sorted(codes)


class Problem(BaseModel):
    """One reason a body or upload was refused."""

    index: int | None = Field(None, description="Feature (row) number, when per feature")
    feature_id: str | None = None
    field: str | None = None
    reason: str


class ErrorOut(BaseModel):
    """Every error: a message and the offending field (or null)."""

    error: str
    field: str | None
    problems: list[Problem] | None = Field(None, description="Every reason, for 422")


REGISTRY: dict[tuple[str, str], Endpoint] = {}


def register(endpoint: Endpoint) -> Endpoint:
    """Record ``endpoint`` (a method and path may be declared once)."""
    key = (endpoint.method, endpoint.path)
    if key in REGISTRY and REGISTRY[key] != endpoint:
        raise ValueError(f"{endpoint.method.upper()} /api{endpoint.path} is declared twice")
    REGISTRY[key] = endpoint
    return endpoint


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """OpenAPI query parameters from a model: one per field, null branches dropped."""
    schema = model.model_json_schema(ref_template=REF)
    required = set(schema.get("required", ()))
    out = []
    for name, prop in schema["properties"].items():
        prop = _without_null(copy.deepcopy(prop))
        description = prop.pop("description", "")
        prop.pop("title", None)
        out.append(
            {
                "name": name,
                "in": "query",
                "required": name in required,
                "description": description,
                "schema": prop,
            }
        )
    return out


def _without_null(prop: dict[str, Any]) -> dict[str, Any]:
    """``anyOf: [X, {type: null}]`` -> X (a query parameter is absent, never null)."""
    options = prop.get("anyOf")
    if options:
        kept = [o for o in options if o.get("type") != "null"]
        if len(kept) == 1:
            merged = {k: v for k, v in prop.items() if k != "anyOf"}
            merged.update(kept[0])
            if merged.get("default", 0) is None:
                merged.pop("default")
            return merged
    return prop


def _schemas() -> tuple[dict[tuple[Any, JsonSchemaMode], dict[str, Any]], dict[str, Any]]:
    pairs: list[tuple[type[BaseModel], JsonSchemaMode]] = []
    for ep in REGISTRY.values():
        if ep.body is not None:
            pairs.append((ep.body, "validation"))
        if ep.response is not None:
            pairs.append((ep.response, "serialization"))
    pairs.append((ErrorOut, "serialization"))
    refs, defs = models_json_schema(list(dict.fromkeys(pairs)), ref_template=REF)
    return refs, defs.get("$defs", {})


def document(
    *, server: str = "/api", title: str = "zoneplan API", version: str = "0.1.0"
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every registered endpoint."""
    refs, components = _schemas()
    error_ref = refs[(ErrorOut, "serialization")]
    paths: dict[str, dict[str, Any]] = {}
    for ep in sorted(REGISTRY.values(), key=lambda e: (e.path, e.method)):
        op: dict[str, Any] = {
            "operationId": ep.operation_id,
            "summary": ep.summary,
            "tags": [ep.tag],
            "parameters": [],
        }
        if ep.description:
            op["description"] = ep.description
        if not ep.public:
            op["security"] = [{"bearerAuth": []}, {"cookieAuth": []}]
            op["description"] = (
                op.get("description", "") + f"\n\nRoles: {', '.join(ep.roles)}."
            ).strip()
        for name, schema in ep.path_params.items():
            op["parameters"].append(
                {"name": name, "in": "path", "required": True, "schema": schema}
            )
        if ep.query is not None:
            op["parameters"] += query_parameters(ep.query)
        if ep.body is not None:
            op["requestBody"] = {
                "required": ep.body_required,
                "content": {"application/json": {"schema": refs[(ep.body, "validation")]}},
            }
        elif ep.form is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"multipart/form-data": {"schema": ep.form}},
            }
        ok: dict[str, Any] = {"description": STATUS_TEXT.get(ep.status, "OK")}
        medias = (ep.media,) if isinstance(ep.media, str) else ep.media
        if ep.response is not None:
            ok["content"] = {m: {"schema": refs[(ep.response, "serialization")]} for m in medias}
        elif medias != ("application/json",):
            ok["content"] = {m: {"schema": _file_schema(m)} for m in medias}
        responses = {str(ep.status): ok}
        for code in ep.error_statuses():
            responses[str(code)] = {
                "description": STATUS_TEXT.get(code, "Error"),
                "content": {"application/json": {"schema": error_ref}},
            }
        op["responses"] = responses
        paths.setdefault(server.rstrip("/") + ep.path, {})[ep.method] = op
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": title,
            "version": version,
            "description": "Plots, layers, applications, servicing and exports of the "
            "Almaty Industrial Zone. GeoJSON is WGS84 (RFC 7946); errors are "
            '`{"error": message, "field": name or null}`. GIS '
            "clients read every layer over OGC API - Features at /ogc, "
            "described by its own OpenAPI 3.0 document at /ogc/api.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A user's API token (`zoneplan user token NAME`)",
                },
                "cookieAuth": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "session",
                    "description": "The browser session after /login (unsafe "
                    "methods also need the X-CSRFToken header)",
                },
            },
        },
    }


def _file_schema(media: str) -> dict[str, Any]:
    """A downloaded file: JSON media types (GeoJSON) are objects, the rest bytes."""
    if media.endswith("json"):
        return {"type": "object", "description": "A GeoJSON FeatureCollection"}
    return {"type": "string", "format": "binary"}


def listing() -> list[dict[str, Any]]:
    """The registry flattened for the HTML page: endpoints grouped by tag, with parameters
    and body fields (name, type, constraints, description)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for ep in sorted(REGISTRY.values(), key=lambda e: (e.tag, e.path, e.method)):
        params = [
            {"name": n, "in": "path", "type": _type_text(s), "required": True, "description": ""}
            for n, s in ep.path_params.items()
        ]
        if ep.query is not None:
            params += [
                {
                    "name": p["name"],
                    "in": "query",
                    "type": _type_text(p["schema"]),
                    "required": p["required"],
                    "description": p["description"],
                }
                for p in query_parameters(ep.query)
            ]
        body = []
        if ep.body is not None:
            schema = ep.body.model_json_schema()
            need = set(schema.get("required", ()))
            body = [
                {
                    "name": n,
                    "in": "body",
                    "type": _type_text(_without_null(dict(s))),
                    "required": n in need,
                    "description": s.get("description", ""),
                }
                for n, s in schema["properties"].items()
            ]
        elif ep.form is not None:
            need = set(ep.form.get("required", ()))
            body = [
                {
                    "name": n,
                    "in": "form",
                    "type": _type_text(s),
                    "required": n in need,
                    "description": s.get("description", ""),
                }
                for n, s in ep.form["properties"].items()
            ]
        groups.setdefault(ep.tag, []).append(
            {
                "method": ep.method.upper(),
                "path": "/api" + ep.path,
                "summary": ep.summary,
                "description": ep.description,
                "roles": ", ".join(ep.roles),
                "params": params,
                "body": body,
                "status": ep.status,
                "response": ep.response.__name__
                if ep.response is not None
                else (ep.media if isinstance(ep.media, str) else " | ".join(ep.media)),
                "errors": ep.error_statuses(),
            }
        )
    return [{"tag": tag, "endpoints": eps} for tag, eps in groups.items()]


def _type_text(schema: dict[str, Any]) -> str:
    """A short human type: ``number ≥ 0``, ``one of a, b``, ``string (date)``."""
    if "enum" in schema:
        return "one of " + ", ".join(map(str, schema["enum"]))
    text = schema.get("type", "value")
    if isinstance(text, list):
        text = " or ".join(text)
    if "format" in schema:
        text += f" ({schema['format']})"
    bits = []
    for key, sign in (
        ("minimum", "≥"),
        ("maximum", "≤"),
        ("minLength", "length ≥"),
        ("maxLength", "length ≤"),
    ):
        if key in schema:
            bits.append(
                f"{sign} {schema[key]:g}"
                if isinstance(schema[key], float)
                else f"{sign} {schema[key]}"
            )
    if "pattern" in schema:
        bits.append(f"pattern {schema['pattern']}")
    if "default" in schema:
        bits.append(f"default {schema['default']}")
    return text + (" (" + ", ".join(bits) + ")" if bits else "")
