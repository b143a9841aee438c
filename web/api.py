"""The JSON API under /api: a thin Flask adapter over planner.catalogue, planner.applications
and geo.io.

Every operation is declared with :func:`endpoint`, which binds the Flask route, checks
the role, validates the query and body with the pydantic models, and records the
operation for the OpenAPI document (web/openapi.py). Other modules add operations to
the same blueprint the same way (``web/api_edit.py`` is imported at the end of this
module when it exists)::

    from web.api import bp, endpoint

    @endpoint("patch", "/plots/{plot_id}", summary="...", tag="plots", roles=("planner",),
              body=PlotPatch, response=PlotFeature, path_params={"plot_id": {"type": "string"}})
    def patch_plot(plot_id, body): ...

Errors are ``{"error": message, "field": name-or-null}`` with 400 (malformed parameter),
401, 403, 404, 409 (conflict), 413 (too large), 422 (body breaks the rules) or 503.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import re
import shutil
import tempfile
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, Literal

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    jsonify,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import gettext
from flask_login import current_user
from pydantic import BaseModel, ConfigDict, Field
from werkzeug.exceptions import BadRequest, HTTPException

from geo import io as geo_io
from geo.layers import APPLICATION_STATUSES, ID_MAX_LENGTH, LAYERS, PLOT_STATUSES, SECTORS
from geo.store import Conflict, Invalid, NotFound, StoreError
from geo.validate import Problem as SchemaProblem
from geo.validate import ValidationError
from planner import applications as apps
from planner import catalogue as cat
from planner.catalogue import IsoDate, PlotFilters, QueryError
from planner.kpi import kpi as kpi_of
from planner.visibility import NEVER_SERVED, Forbidden
from usecases import applications as usecase
from usecases import exports, uploads
from usecases.exports import EXPORTABLE, FORMATS, ExportQuery, LayerExportQuery
from web import deps
from web.auth import api_error, api_role_required, current_role, current_username
from web.openapi import Endpoint, Problem, document, listing, register
from web.security import SAFE_METHODS, bearer_token

bp = Blueprint("api", __name__, url_prefix="/api")

DEFAULT_JSON_LIMIT = 64 * 1024
MAX_JSON_DEPTH = 32  # our bodies nest 3 deep; deeper is an attack on the parser
DEFAULT_UPLOAD_LIMIT = 32 * 1024 * 1024
FORMAT_MEDIA = {
    "shp.zip": "application/zip",
    "gpkg": "application/geopackage+sqlite3",
    "geojson": "application/geo+json",
}
IMPORTABLE = tuple(n for n in LAYERS if n not in geo_io.NOT_IMPORTABLE)


# --------------------------------------------------------------------------- models
class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class AsOfQuery(_Query):
    """Answer servicing as recorded, or as of a date."""

    as_of: IsoDate | None = Field(
        None,
        description="Answer servicing as of this date, assuming "
        "due repairs are done (default: infrastructure as recorded)",
    )


class ApplicationsQuery(_Query):
    """Filter applications by status."""

    status: Literal[APPLICATION_STATUSES] | None = Field(  # type: ignore[valid-type]
        None, description="Only applications in this state"
    )


class Geometry(BaseModel):
    """A GeoJSON geometry in WGS84."""

    type: Literal[
        "Point",
        "LineString",
        "Polygon",
        "MultiPoint",
        "MultiLineString",
        "MultiPolygon",
        "GeometryCollection",
    ]
    coordinates: list[Any]


class Link(BaseModel):
    href: str
    rel: str
    type: str | None = None


class PlotProperties(BaseModel):
    """A catalogue plot with its key servicing facts."""

    plot_id: str
    cadastre: str | None
    status: Literal[PLOT_STATUSES]  # type: ignore[valid-type]
    area_ha: float | None
    sectors: list[Literal[SECTORS]]  # type: ignore[valid-type]
    hazard_ok: int | None
    exp_id: str | None
    rail: bool | None = Field(description="Rail access available")
    rail_distance_m: float | None
    power: bool | None = Field(description="Power connection available")
    power_headroom_kw: float | None
    water: bool | None
    water_headroom_m3d: float | None
    ready: str | None = Field(
        description="'now', a date (YYYY-MM-DD) or 'unknown'; counts "
        "road, power and water (rail when the plot needs "
        "it), not storm sewer or gas"
    )
    waits_for: list[str] | None = Field(
        description="Required services not there yet (road, "
        "rail, power, water): what readiness "
        "waits for"
    )


class PlotFeature(BaseModel):
    """One plot as a GeoJSON Feature (id = plot_id)."""

    type: Literal["Feature"]
    id: str
    geometry: Geometry | None
    properties: PlotProperties


class PlotCollection(BaseModel):
    """Catalogue plots as a GeoJSON FeatureCollection (WGS84)."""

    type: Literal["FeatureCollection"]
    numberMatched: int
    numberReturned: int
    timeStamp: str
    features: list[PlotFeature]
    links: list[Link]


class LayerFeature(BaseModel):
    type: Literal["Feature"]
    id: str
    geometry: Geometry | None
    properties: dict[str, Any]


class LayerCollection(BaseModel):
    """A page of a layer as a GeoJSON FeatureCollection (tables: null geometries)."""

    type: Literal["FeatureCollection"]
    numberMatched: int
    numberReturned: int
    timeStamp: str
    features: list[LayerFeature]


class LayerInfo(BaseModel):
    name: str
    label: str
    geometry: Literal["Point", "LineString", "Polygon"] | None
    count: int
    public: bool
    asset: bool


class LayerList(BaseModel):
    """The layers your role may read."""

    layers: list[LayerInfo]


class ApplicationList(BaseModel):
    """Applications, newest first: your own (investors) or all (planners)."""

    applications: list[apps.ApplicationOut]  # type: ignore[valid-type]


class ServicingOut(BaseModel):
    """A plot's servicing record and the same answer in words."""

    plot_id: str
    as_of: str | None
    record: dict[str, Any]
    explain: list[str]


class KpiOut(BaseModel):
    """Zone indicators (planner.kpi)."""

    model_config = ConfigDict(extra="allow")


class Removal(BaseModel):
    id: str
    status: str | None


class Update(BaseModel):
    id: str
    changes: dict[str, list[Any]] = Field(description="{field: [before, after]}")


class UploadPreview(BaseModel):
    """What an upload would change; apply it with POST /api/uploads/{token}."""

    token: str
    layer: str
    source: str
    features: int
    mode: Literal[geo_io.MODES]  # type: ignore[valid-type]
    replace: bool
    adds: int = Field(description="New ids")
    updates: int = Field(description="Stored features the file changes")
    unchanged: int
    removals: int = Field(description="Stored features a replace removes")
    removals_by_status: dict[str, int]
    removed: list[Removal]
    updated: list[Update]
    ok: bool
    problem_count: int
    problems: list[Problem]
    ignored_columns: list[str]


class UploadApplied(BaseModel):
    layer: str
    written: int = Field(description="Features added or updated")
    added: int
    updated: int
    removed: int


UPLOAD_FORM = {
    "type": "object",
    "required": ["file", "layer"],
    "properties": {
        "file": {
            "type": "string",
            "format": "binary",
            "description": "A zipped shapefile, a GeoPackage or GeoJSON",
        },
        "layer": {"type": "string", "enum": list(IMPORTABLE), "description": "Target layer"},
        "mode": {
            "type": "string",
            "enum": list(geo_io.MODES),
            "description": "update (default): update ids in the file, add new ones; "
            "replace: also remove what the file lacks",
        },
        "replace": {"type": "boolean", "description": "The same as mode=replace"},
        "crs": {"type": "string", "description": "EPSG code for files without a CRS"},
        "src_layer": {"type": "string", "description": "Layer of a GeoPackage to read"},
        "encoding": {
            "type": "string",
            "description": "Encoding of the file's text when it does not say (e.g. cp1251)",
        },
    },
}


# --------------------------------------------------------------------------- plumbing
def _flask_rule(path: str) -> str:
    return re.sub(r"\{(\w+)\}", r"<\1>", path)


def endpoint(
    method: str,
    path: str,
    *,
    summary: str,
    tag: str,
    rule: str | None = None,
    query: type[BaseModel] | None = None,
    body: type[BaseModel] | None = None,
    body_required: bool = True,
    form: dict[str, Any] | None = None,
    response: type[BaseModel] | None = None,
    status: int = 200,
    media: str | tuple[str, ...] = "application/json",
    roles: tuple[str, ...] = ("public",),
    path_params: dict[str, dict[str, Any]] | None = None,
    errors: tuple[int, ...] = (),
    description: str = "",
) -> Callable:
    """Declare an API operation: route, role check, validation and OpenAPI entry in one.

    The view receives the path parameters, ``query`` (the validated query model) when
    ``query`` is given and ``body`` (the validated body model) when ``body`` is given,
    and returns a JSON-ready value (sent with ``status``) or a Response.
    """
    ep = register(
        Endpoint(
            method=method.lower(),
            path=path,
            summary=summary,
            tag=tag,
            description=description,
            query=query,
            body=body,
            body_required=body_required,
            form=form,
            response=response,
            status=status,
            media=media,
            roles=roles,
            path_params=path_params or {},
            errors=errors,
        )
    )

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(**kwargs: Any):
            if ep.query is not None:
                kwargs["query"] = cat.parse_model(ep.query, _args(), translate=gettext)
            if ep.body is not None:
                kwargs["body"] = apps.parse_body(ep.body, _json_body(), translate=gettext)
            result = view(**kwargs)
            if isinstance(result, Response):
                return result
            return jsonify(_finite(result)), ep.status

        guarded = wrapped if ep.public else api_role_required(*roles)(wrapped)
        bp.add_url_rule(
            rule or _flask_rule(path),
            endpoint=view.__name__,
            view_func=guarded,
            methods=[method.upper()],
        )
        return guarded

    return decorator


def _args() -> dict[str, str]:
    """The query string as a dict; a repeated parameter becomes a comma list."""
    return {key: ",".join(request.args.getlist(key)) for key in request.args}


def _json_body() -> Any:
    """The request's JSON (None when empty), refusing bodies over ``API_MAX_JSON_BYTES``."""
    limit = int(current_app.config.get("API_MAX_JSON_BYTES", DEFAULT_JSON_LIMIT))
    if current_app.config.get("MAX_CONTENT_LENGTH"):
        limit = min(limit, int(current_app.config["MAX_CONTENT_LENGTH"]))
    if request.content_length is not None and request.content_length > limit:
        abort(413, f"the body is larger than {limit} bytes")
    request.max_content_length = limit  # also bounds bodies sent without a length
    raw = request.get_data(cache=True)
    if not raw.strip():
        return None
    if not request.is_json:
        raise BadRequest("send the body as JSON with Content-Type: application/json")
    try:
        body = json.loads(raw)
    except RecursionError:
        body = None
    except (ValueError, UnicodeDecodeError) as err:
        raise BadRequest(f"the body is not valid JSON: {err}") from None
    if body is None or _depth(body) > MAX_JSON_DEPTH:
        raise BadRequest(f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels")
    return body


def _depth(value: Any) -> int:
    """How deeply arrays and objects nest in ``value`` (walked without recursion)."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, level = todo.pop()
        if isinstance(item, (list, dict)):
            deepest = max(deepest, level)
            if level > MAX_JSON_DEPTH:
                break
            todo.extend(
                (child, level + 1) for child in (item.values() if isinstance(item, dict) else item)
            )
    return deepest


def _finite(value: Any) -> Any:
    """Replace NaN and infinities (which JSON cannot carry) with null, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def api_error_with_problems(
    message: str, status: int, field: str | None = None, problems: list | None = None
):
    """A JSON error response, with ``problems`` (``geo.validate.Problem``) when given."""
    response = api_error(message, status, field)
    if problems:
        body = response.get_json()
        body["problems"] = [dataclasses.asdict(p) for p in problems[:200]]
        response.set_data(json.dumps(body, ensure_ascii=False))
    return response


_error = api_error_with_problems  # the short name this module's handlers use


@bp.errorhandler(QueryError)
def _bad_parameter(err: QueryError):
    return _error(str(err), 400, err.field)


@bp.errorhandler(Forbidden)
def _forbidden(err: Forbidden):
    if not current_user.is_authenticated:
        return _error(f"{err}; log in first", 401, err.field)
    return _error(str(err), 403, err.field)


@bp.errorhandler(NotFound)
def _not_found(err: NotFound):
    return _error(str(err), 404)


@bp.errorhandler(Conflict)
def _conflict(err: Conflict):
    return _error(str(err), 409)


@bp.errorhandler(Invalid)  # a StoreError too: named here so the 503 handler never takes it
@bp.errorhandler(ValidationError)
def _invalid(err: ValidationError):
    first = err.problems[0] if err.problems else None
    message = (
        f"{first.field}: {first.reason}"
        if first and first.field
        else (first.reason if first else str(err))
    )
    if len(err.problems) > 1:
        message += f" (and {len(err.problems) - 1} more problem(s))"
    return _error(message, 422, first.field if first else None, err.problems)


@bp.errorhandler(StoreError)
def _store_busy(err: StoreError):
    return _error(str(err), 503)


def _http_json(err: HTTPException):
    response = _error(err.description or err.name, err.code or 500)
    allow = dict(err.get_headers()).get("Allow")
    if allow:  # a 405 names the methods the path does take
        response.headers["Allow"] = allow
    return response


@bp.errorhandler(HTTPException)
def _http(err: HTTPException):
    return _http_json(err)


@bp.app_errorhandler(HTTPException)
def _http_outside(err: HTTPException):
    """JSON for errors under /api that no view saw (405, unknown paths); others unchanged."""
    if request.path.startswith("/api/") or request.path == "/api":
        return _http_json(err)
    return err


def _writes_need_a_user():
    """Unsafe requests under /api with no credentials at all get 401 before anything else
    (before the CSRF check: a request without a session has no authority to forge)."""
    if (
        request.method in SAFE_METHODS
        or not request.path.startswith("/api/")
        or request.routing_exception is not None
    ):  # 404/405 first: nothing to guard
        return None
    if bearer_token() is not None or current_user.is_authenticated:
        return None
    return _error("authentication required: log in, or send 'Authorization: Bearer <token>'", 401)


@bp.record_once
def _install_auth_first(state) -> None:
    state.app.before_request_funcs.setdefault(None, []).insert(0, _writes_need_a_user)


def _model() -> Any:
    return deps.servicing_model()


# --------------------------------------------------------------------------- plots
PLOT_ID = {"plot_id": {"type": "string", "minLength": 1, "maxLength": ID_MAX_LENGTH}}


def _links(page: cat.PlotPage) -> list[dict[str, str]]:
    f = page.filters
    links = [
        {
            "href": url_for("api.list_plots", **f.query_string()),
            "rel": "self",
            "type": "application/geo+json",
        }
    ]
    if f.offset + f.limit < page.matched:
        links.append(
            {
                "href": url_for("api.list_plots", **f.query_string(offset=f.offset + f.limit)),
                "rel": "next",
                "type": "application/geo+json",
            }
        )
    if f.offset:
        links.append(
            {
                "href": url_for(
                    "api.list_plots", **f.query_string(offset=max(0, f.offset - f.limit))
                ),
                "rel": "prev",
                "type": "application/geo+json",
            }
        )
    return links


@endpoint(
    "get",
    "/plots",
    summary="Plots of the catalogue (GeoJSON, WGS84)",
    tag="plots",
    query=PlotFilters,
    response=PlotCollection,
    errors=(401, 403),
    description="Available plots by default; 'status' may ask for any status your "
    "role sees (candidates for planners only, else 403). "
    "The bbox uses the store's spatial index; rail, power, water and "
    "ready_by use the cached servicing answers. limit > 10000 is refused (400).",
)
def list_plots(query: PlotFilters):
    page = cat.search(deps.get_store(), query, role=current_role(), servicing=_model())
    out = page.feature_collection()
    out["links"] = _links(page)
    return out


@endpoint(
    "get",
    "/plots/{plot_id}",
    summary="One plot (GeoJSON Feature)",
    tag="plots",
    query=AsOfQuery,
    response=PlotFeature,
    path_params=PLOT_ID,
    description="Candidate plots are 404 except for planners, like missing ones.",
)
def get_plot(plot_id: str, query: AsOfQuery):
    role = current_role()
    rows = cat.get_plot(deps.get_store(), plot_id, role=role, servicing=_model(), as_of=query.as_of)
    return cat.plot_feature(rows, role)


@endpoint(
    "get",
    "/servicing/{plot_id}",
    summary="A plot's servicing answer, in words too",
    tag="plots",
    query=AsOfQuery,
    response=ServicingOut,
    path_params=PLOT_ID,
)
def servicing(plot_id: str, query: AsOfQuery):
    cat.get_plot(
        deps.get_store(), plot_id, role=current_role()
    )  # 404 for what the role may not see
    record = _model().answer([plot_id], as_of=query.as_of)[0]
    return {
        "plot_id": plot_id,
        "as_of": None if query.as_of is None else query.as_of.isoformat(),
        "record": record,
        "explain": deps.explain(record, translate=gettext),
    }


@endpoint(
    "get",
    "/kpi",
    summary="Zone indicators",
    tag="plots",
    query=AsOfQuery,
    response=KpiOut,
    roles=("planner",),
    errors=(503,),
)
def kpi(query: AsOfQuery):
    snapshot = deps.deps().cached(
        "kpi_snapshot", lambda: {**deps.snapshot(), "targets": deps.get_store().read("targets")}
    )
    return kpi_of(snapshot, as_of=query.as_of, model=_model())


# --------------------------------------------------------------------------- layers
LAYER_NAME = {"name": {"type": "string", "enum": [n for n in LAYERS if n not in NEVER_SERVED]}}


@endpoint("get", "/layers", summary="Layers you may read", tag="layers", response=LayerList)
def list_layers():
    return {"layers": cat.layer_summary(deps.get_store(), current_role())}


@endpoint(
    "get",
    "/layers/{name}",
    summary="A layer's features (GeoJSON, WGS84)",
    tag="layers",
    query=cat.LayerQuery,
    response=LayerCollection,
    path_params=LAYER_NAME,
    errors=(401, 403),
    description="Non-public layers are for planners; investors see the available plots only.",
)
def get_layer(name: str, query: cat.LayerQuery):
    return cat.layer_collection(deps.get_store(), name, query, role=current_role())


# --------------------------------------------------------------------------- exports
def export_response(layer: str, fmt: str, query: ExportQuery | LayerExportQuery) -> Response:
    """Write the export to a temporary folder and send it; the folder goes when sent."""
    work = Path(tempfile.mkdtemp(prefix="zoneplan-export-"))
    try:
        path = exports.export_file(
            deps.get_store(), layer, fmt, query, work, role=current_role(), servicing=_model()
        )
        response = send_file(
            path, mimetype=FORMAT_MEDIA[fmt], as_attachment=True, download_name=path.name, max_age=0
        )
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    response.call_on_close(lambda: shutil.rmtree(work, ignore_errors=True))
    return response


FORMAT_RULE = "<any('shp.zip', gpkg, geojson):format>"
FORMAT_PARAM = {"format": {"type": "string", "enum": list(FORMATS)}}
FILES = (
    "Zipped shapefile (with .prj and UTF-8 .cpg), GeoPackage or GeoJSON (WGS84 unless "
    "crs says otherwise). "
)


@endpoint(
    "get",
    "/export/plots.{format}",
    summary="Download the plots (the filtered catalogue)",
    tag="exports",
    rule=f"/export/plots.{FORMAT_RULE}",
    query=ExportQuery,
    media=tuple(FORMAT_MEDIA.values()),
    errors=(401, 403),
    path_params=FORMAT_PARAM,
    description=FILES + "Planners get every plot and field (no status: every status); "
    "others the plots the catalogue shows them, without occupants, projects, "
    "investment, jobs or demand. The catalogue filters narrow it.",
)
def export_plots(format: str, query: ExportQuery):  # noqa: A002 - the path's name
    return export_response("plots", format, query)


@endpoint(
    "get",
    "/export/{layer}.{format}",
    summary="Download a layer",
    tag="exports",
    rule=f"/export/<layer>.{FORMAT_RULE}",
    query=LayerExportQuery,
    media=tuple(FORMAT_MEDIA.values()),
    errors=(401, 403),
    path_params={
        "layer": {"type": "string", "enum": [n for n in EXPORTABLE if n != "plots"]},
        **FORMAT_PARAM,
    },
    description=FILES + "bbox for feature layers. Non-public layers for planners only.",
)
def export(layer: str, format: str, query: LayerExportQuery):  # noqa: A002 - the path's name
    return export_response(layer, format, query)


# --------------------------------------------------------------------------- applications
APP_ID = {"app_id": {"type": "string", "minLength": 1, "maxLength": ID_MAX_LENGTH}}


def tx_servicing(tx: Any) -> Any:
    """The servicing model for a use case's transaction: the one cached for the store's
    revision, read while the transaction holds the store's write lock (so it is what the
    transaction sees)."""
    return deps.servicing_model()


def rules_json(breaches: list) -> list[dict[str, str]]:
    """Broken reservation rules as ``{"rule", "message"}`` in the request's language."""
    return [b.to_dict(gettext) for b in breaches]


@bp.errorhandler(usecase.Refused)
def _refused(err: usecase.Refused):
    """409 naming every broken rule: ``problems`` holds one per rule (``field`` = the rule)."""
    return _error(
        err.message(gettext),
        409,
        "plot_id",
        [SchemaProblem(None, err.plot_id, b.rule, b.message(gettext)) for b in err.breaches],
    )


@endpoint(
    "post",
    "/applications",
    summary="Apply for a plot, or for any plot matching your needs",
    tag="applications",
    body=apps.ApplicationIn,
    response=apps.ApplicationFiled,
    status=201,
    roles=("investor",),
    errors=(409,),
    description="A plot applied for must be available, of an area within the range and "
    "zoned for the sector (else 422). The other reservation rules (rail, "
    "hazard class, power and water connection and headroom today) come "
    "back as `warnings`: the application is filed, and a planner's accept "
    "is refused (409) while they hold.",
)
def create_application(body: BaseModel):
    filed = usecase.apply(
        deps.get_store(), body, user=current_username(), role=current_role(), servicing=tx_servicing
    )
    return {**filed.application, "warnings": rules_json(filed.warnings)}


@endpoint(
    "get",
    "/applications",
    summary="Your applications (planners: all)",
    tag="applications",
    query=ApplicationsQuery,
    response=ApplicationList,
    roles=("investor", "planner"),
)
def list_applications(query: ApplicationsQuery):
    return {
        "applications": apps.list_applications(
            deps.get_store(), user=current_username(), role=current_role(), status=query.status
        )
    }


@endpoint(
    "get",
    "/applications/{app_id}",
    summary="One application",
    tag="applications",
    response=apps.ApplicationOut,
    roles=("investor", "planner"),
    path_params=APP_ID,
)
def get_application(app_id: str):
    return apps.get_application(
        deps.get_store(), app_id, user=current_username(), role=current_role()
    )


@endpoint(
    "post",
    "/applications/{app_id}/withdraw",
    summary="Withdraw your application",
    tag="applications",
    body=apps.WithdrawIn,
    body_required=False,
    response=apps.ApplicationOut,
    roles=("investor",),
    path_params=APP_ID,
    errors=(409,),
    description="A submitted or accepted application; an accepted one gives its plot "
    "back (available again, its capacity free).",
)
def withdraw_application(app_id: str, body: apps.WithdrawIn):
    return usecase.withdraw(
        deps.get_store(), app_id, user=current_username(), role=current_role(), version=body.version
    )


@endpoint(
    "post",
    "/applications/{app_id}/accept",
    summary="Accept a submitted application and reserve the plot",
    tag="applications",
    body=apps.AcceptIn,
    body_required=False,
    response=apps.ApplicationOut,
    roles=("planner",),
    path_params=APP_ID,
    errors=(409,),
    description="Checked in the transaction that reserves the plot: area within the "
    "range, sector allowed, rail if needed, hazard class, and power and "
    "water headroom of the plot's substation and main as recorded today. "
    "A broken rule is 409 naming each one in `problems` (`field` = the "
    "rule) and nothing is written. The plot then carries the "
    "application's demand and identity, so other plots on the same "
    "substation show less headroom at once.",
)
def accept_application(app_id: str, body: apps.AcceptIn):
    return usecase.accept(
        deps.get_store(),
        app_id,
        body.plot_id,
        user=current_username(),
        role=current_role(),
        version=body.version,
        servicing=tx_servicing,
    )


@endpoint(
    "post",
    "/applications/{app_id}/reject",
    summary="Reject an application",
    tag="applications",
    body=apps.RejectIn,
    response=apps.ApplicationOut,
    roles=("planner",),
    path_params=APP_ID,
    errors=(409,),
    description="A submitted or accepted application, with a reason the investor "
    "sees; an accepted one gives its plot back (available again, its "
    "capacity free).",
)
def reject_application(app_id: str, body: apps.RejectIn):
    return usecase.reject(
        deps.get_store(),
        app_id,
        body.reason,
        user=current_username(),
        role=current_role(),
        version=body.version,
    )


# --------------------------------------------------------------------------- uploads
# How the import options are called in the API's messages.
API_OPTIONS = {
    "crs": "the form field crs (an EPSG code)",
    "src_layer": "the form field src_layer",
    "encoding": "the form field encoding",
}
_TRUE = ("1", "true", "on", "yes")


def upload_limit() -> int:
    """Largest upload accepted, bytes (``ZONEPLAN_UPLOAD_MAX_BYTES``)."""
    return int(current_app.config.get("ZONEPLAN_UPLOAD_MAX_BYTES", DEFAULT_UPLOAD_LIMIT))


def check_upload_size() -> None:
    """413 when the request is larger than the upload limit."""
    limit = upload_limit()
    if request.content_length is not None and request.content_length > limit:
        abort(
            413,
            f"the upload is larger than {limit // (1024 * 1024) or 1} MB "
            f"({limit} bytes); split it or ask for a higher ZONEPLAN_UPLOAD_MAX_BYTES",
        )


def upload_request(file_storage: Any, form: Any) -> tuple[bytes, uploads.ImportOptions]:
    """The uploaded file and the options chosen with it (form fields ``layer``, ``mode``
    or the ``replace`` checkbox, ``crs``, ``src_layer``, ``encoding``).

    Raises QueryError naming the field, or 413 for a file over the limit.
    """
    layer = (form.get("layer") or "").strip()
    if layer not in IMPORTABLE:
        raise QueryError(f"layer: choose one of {', '.join(IMPORTABLE)}", "layer")
    if file_storage is None or not getattr(file_storage, "filename", ""):
        raise QueryError("file: choose a zipped shapefile, GeoPackage or GeoJSON file", "file")
    replace = str(form.get("replace", "")).lower() in _TRUE
    mode = (form.get("mode") or "").strip() or ("replace" if replace else "update")
    if mode not in geo_io.MODES or (replace and mode != "replace"):
        raise QueryError(
            f"mode: choose {' or '.join(geo_io.MODES)} (replace=true is mode=replace)", "mode"
        )
    text = {k: (form.get(k) or "").strip()[:60] or None for k in ("crs", "src_layer", "encoding")}
    data = file_storage.read(upload_limit() + 1)
    if len(data) > upload_limit():
        abort(413, "the upload is too large")
    return data, uploads.ImportOptions(
        layer=layer, mode=mode, filename=Path(file_storage.filename).name[-120:], **text
    )


@bp.errorhandler(uploads.ConfirmationNeeded)
def _unconfirmed(err: uploads.ConfirmationNeeded):
    return _error(f"{err}: send confirm_removals={err.plan.removals}", 409, "confirm_removals")


@endpoint(
    "post",
    "/uploads",
    summary="Check a file for import (nothing is written)",
    tag="uploads",
    form=UPLOAD_FORM,
    response=UploadPreview,
    roles=("planner",),
    description="Runs the same checks as `zoneplan import`. 200 with a token and what "
    "would change (new ids, updates field by field, and for mode=replace "
    "every removal with its status) when the file may be applied; 422 "
    "listing every problem otherwise (with that preview when the file "
    "could be read). A replace never removes reserved, "
    "allocated or occupied plots or plots an application names.",
)
def upload():
    check_upload_size()
    data, options = upload_request(request.files.get("file"), request.form)
    plan, token = uploads.stage(
        deps.get_store(), data, options, user=current_username(), names=API_OPTIONS
    )
    if token is None:  # refused: the problems, and what the file would have changed
        response = _invalid(ValidationError(plan.problems))
        body = response.get_json()
        body["preview"] = plan.to_dict(limit=200)
        response.set_data(json.dumps(_finite(body), ensure_ascii=False, default=str))
        return response
    return {"token": token, **plan.to_dict(limit=200)}


class UploadConfirm(BaseModel):
    """The second confirmation of a replace: how many removals the preview listed."""

    model_config = ConfigDict(extra="forbid")

    confirm_removals: int | None = Field(
        None,
        ge=0,
        description="Required when the import removes features: the number of "
        "removals the preview listed (a different number -> 409)",
    )


@endpoint(
    "post",
    "/uploads/{token}",
    summary="Apply a checked upload in one transaction",
    tag="uploads",
    body=UploadConfirm,
    body_required=False,
    response=UploadApplied,
    roles=("planner",),
    path_params={"token": {"type": "string"}},
    errors=(409, 422),
)
def apply(token: str, body: UploadConfirm):
    plan, written = uploads.confirm(
        deps.get_store(),
        token,
        user=current_username(),
        confirm_removals=body.confirm_removals,
        names=API_OPTIONS,
    )
    return {
        "layer": plan.layer,
        "written": len(written),
        "added": plan.adds,
        "updated": len(plan.updates),
        "removed": plan.removals,
    }


# --------------------------------------------------------------------------- the document
@bp.get("/openapi.json")
def openapi_json():
    """The OpenAPI 3.1 document of this API."""
    return jsonify(document())


@bp.get("/docs")
def docs():
    """A server-rendered listing of the operations, their parameters and bodies."""
    return render_template(
        "api_docs.html", groups=listing(), openapi_url=url_for("api.openapi_json")
    )


# Modules that add operations to this blueprint (imported before it is registered).
EXTENSIONS = ("web.api_edit", "web.api_jobs", "web.api_coords")
for _name in EXTENSIONS:
    importlib.import_module(_name)
