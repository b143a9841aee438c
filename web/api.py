"""The JSON API under /api: the blueprint, how an operation is declared, and the errors.

Every operation is declared with :func:`endpoint`, which binds the Flask route, checks
the role, validates the query and body with the pydantic models, and records the
operation for the OpenAPI document (web/openapi.py). The operations live beside this
module, one per noun (``web/api_plots.py``: plots and layers; ``web/api_applications.py``;
``web/api_files.py``: downloads and uploads; ``web/api_edit.py``; ``web/api_jobs.py``),
imported at the end of this module so they register before the blueprint does::

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
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, Literal

import orjson
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    jsonify,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext
from flask_login import current_user
from pydantic import BaseModel, ConfigDict, Field
from werkzeug.exceptions import BadRequest, HTTPException

from geo import io as geo_io
from geo.i18n import N_
from geo.layers import ID_MAX_LENGTH, LAYERS
from geo.store import Conflict, Invalid, NotFound, StoreError
from geo.validate import ValidationError
from planner import applications as apps
from planner import catalogue as cat
from planner.catalogue import IsoDate, QueryError
from planner.visibility import Forbidden
from usecases import uploads
from usecases.exports import EXPORTABLE
from web import deps
from web.auth import api_error, api_role_required
from web.openapi import Endpoint, document, listing, register
from web.security import SAFE_METHODS, bearer_token

__all__ = [
    "bp",
    "endpoint",
    "api_error_with_problems",
    "EXPORTABLE",
    "IMPORTABLE",
    "PLOT_ID",
    "AsOfQuery",
    "Geometry",
    "tx_servicing",
    "rules_json",
    "upload_limit",
    "check_upload_size",
    "upload_request",
]

bp = Blueprint("api", __name__, url_prefix="/api")

DEFAULT_JSON_LIMIT = 64 * 1024
MAX_JSON_DEPTH = 32  # our bodies nest 3 deep; deeper is an attack on the parser
DEFAULT_UPLOAD_LIMIT = 32 * 1024 * 1024
IMPORTABLE = tuple(n for n in LAYERS if n not in geo_io.NOT_IMPORTABLE)
PLOT_ID = {"plot_id": {"type": "string", "minLength": 1, "maxLength": ID_MAX_LENGTH}}


# --------------------------------------------------------------------------- shared models
class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class AsOfQuery(_Query):
    """Answer servicing as recorded, or as of a date."""

    as_of: IsoDate | None = Field(
        None,
        description=N_(
            "Answer servicing as of this date, assuming "
            "due repairs are done (default: infrastructure as recorded)"
        ),
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
            return jsonify(finite_json(result)), ep.status

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


def finite_json(value: Any) -> Any:
    """Replace NaN and infinities (which JSON cannot carry) with null, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    return value


def fast_json(value: Any, status: int = 200) -> Response:
    """``value`` as a JSON response encoded by orjson: NaN and infinities become null as
    :func:`finite_json` makes them, numpy scalars and arrays plain numbers. For large,
    plain answers (a page of GeoJSON), where the stdlib encoder and the walk of
    :func:`finite_json` cost more than building the page."""
    body = orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(body, status=status, mimetype="application/json")


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


_error = api_error_with_problems  # the short name the handlers use


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
def invalid_response(err: ValidationError):
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


# --------------------------------------------------------------------------- shared with the HTML pages
def tx_servicing(tx: Any) -> Any:
    """The servicing model for a use case's transaction: the one cached for the store's
    revision, read while the transaction holds the store's write lock (so it is what the
    transaction sees)."""
    return deps.servicing_model()


def rules_json(breaches: list) -> list[dict[str, str]]:
    """Broken reservation rules as ``{"rule", "message"}`` in the request's language."""
    return [b.to_dict(gettext) for b in breaches]


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
EXTENSIONS = (
    "web.api_plots",
    "web.api_applications",
    "web.api_files",
    "web.api_edit",
    "web.api_coords",
    "web.api_jobs",
    "web.api_allocate",
    "web.api_search",
)
for _name in EXTENSIONS:
    importlib.import_module(_name)
