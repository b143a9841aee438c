"""OGC API - Features at /ogc: a thin Flask adapter over usecases.ogc.

Chooses JSON or HTML (``f``, else the Accept header: JSON unless it prefers text/html),
passes the caller's role (session, Bearer token or HTTP Basic, see web.auth) and the
base URL to the core, and turns its typed errors into OGC exception bodies.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, render_template, request
from werkzeug.exceptions import MethodNotAllowed

from geo.layers import LAYERS
from usecases.ogc import errors, features, metadata, openapi, queries
from web import deps
from web.auth import current_role

bp = Blueprint("ogc", __name__, url_prefix="/ogc")

JSON = "application/json"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
_OFFERED = (JSON, metadata.GEOJSON, "application/schema+json", OPENAPI, "text/html")


def _base() -> str:
    return request.url_root.rstrip("/") + (bp.url_prefix or "")


def _wants_html() -> bool:
    fmt = request.args.get("f")
    if fmt is not None:
        if fmt not in ("json", "html"):
            raise errors.InvalidParameter(f"f: {fmt!r} is not json or html")
        return fmt == "html"
    return request.accept_mimetypes.best_match(_OFFERED, default=JSON) == "text/html"


def _json(body: Any, media: str = JSON, **headers: str) -> Response:
    text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    return Response(text, mimetype=media, headers=headers)


def _html(kind: str, *, mapped: bool = False, **context: Any) -> Response:
    query = request.args.to_dict(flat=False)
    query["f"] = ["json"]
    json_url = request.base_url + "?" + urlencode(query, doseq=True)
    page = render_template(
        "ogc.html",
        kind=kind,
        base=_base(),
        json_url=json_url,
        mapped=mapped,
        tiles_url=current_app.config.get("ZONEPLAN_TILES_URL"),
        tiles_attribution=current_app.config.get("ZONEPLAN_TILES_ATTRIBUTION"),
        **context,
    )
    return Response(page, mimetype="text/html")


COUNTS = "zoneplan_ogc_counts"


@bp.record_once
def _own_cache(state) -> None:
    # Counts and extents per query get a cache of their own, so a GIS client panning
    # through many boxes never pushes the maps and servicing answers out of the app's.
    state.app.extensions[COUNTS] = deps.RevisionCache(max_entries=4096)


def _cache(key: Any, build: Any) -> Any:
    return current_app.extensions[COUNTS].get_or_build(key, build)


@bp.errorhandler(errors.OgcError)
def _refused(err: errors.OgcError) -> Response:
    response = _json(err.body())
    response.status_code = err.status
    if err.status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="zoneplan", charset="UTF-8"'
    return response


def _read_only() -> Response | None:
    """Writes to /ogc get an OGC exception body and the methods allowed. Routing fails
    before any blueprint is chosen, so this runs first among the app's before-request
    hooks and keeps to /ogc (other paths keep their own 405 answers)."""
    err = request.routing_exception
    if not isinstance(err, MethodNotAllowed) or not (
        request.path == bp.url_prefix or request.path.startswith(f"{bp.url_prefix}/")
    ):
        return None
    allowed = ", ".join(sorted(err.valid_methods or ("GET", "HEAD", "OPTIONS")))
    response = _refused(
        errors.MethodNotAllowed(
            f"{request.method} is not allowed on {request.path}: this service is read-only "
            f"(allowed: {allowed})"
        )
    )
    response.headers["Allow"] = allowed
    return response


@bp.record_once
def _install_read_only(state: Any) -> None:
    state.app.before_request_funcs.setdefault(None, []).insert(0, _read_only)


@bp.route("")
@bp.route("/")
def landing():
    body = metadata.landing(_base())
    return _html("landing", doc=body) if _wants_html() else _json(body)


@bp.route("/conformance")
def conformance():
    body = metadata.conformance()
    return _html("conformance", doc=body) if _wants_html() else _json(body)


@bp.route("/api")
def api():
    body = openapi.api_definition(_base())
    return _html("api", doc=body) if _wants_html() else _json(body, OPENAPI)


@bp.route("/collections")
def collections():
    body = metadata.collections(deps.get_store(), role=current_role(), base=_base(), cache=_cache)
    return _html("collections", doc=body) if _wants_html() else _json(body)


@bp.route("/collections/<name>")
def collection(name: str):
    body = metadata.collection(
        deps.get_store(), name, role=current_role(), base=_base(), cache=_cache
    )
    if _wants_html():
        return _html("collection", doc=body, mapped="spatial" in body.get("extent", {}))
    return _json(body)


@bp.route("/collections/<name>/queryables")
def queryables(name: str):
    body = metadata.queryables(name, role=current_role(), base=_base())
    return (
        _html("queryables", doc=body) if _wants_html() else _json(body, "application/schema+json")
    )


@bp.route("/collections/<name>/items")
def items(name: str):
    role = current_role()
    query = queries.parse_items_query(name, request.args.to_dict(flat=False), role=role)
    html = _wants_html()
    if html:  # the page's map is in lon/lat whatever crs says
        query = dataclasses.replace(query, crs=metadata.CRS84)
    page = features.items(deps.get_store(), name, query, role=role, base=_base(), cache=_cache)
    if html:
        layer = metadata.collection(deps.get_store(), name, role=role, base=_base(), cache=_cache)
        return _html(
            "items", doc=page.as_dict(), name=name, layer=layer, mapped=LAYERS[name].is_feature
        )
    return _json(page.geojson(), metadata.GEOJSON, **{"Content-Crs": f"<{page.crs}>"})


@bp.route("/collections/<name>/items/<feature_id>")
def item(name: str, feature_id: str):
    role = current_role()
    crs = queries.parse_crs(name, request.args.to_dict(flat=False), role=role)
    if _wants_html():
        text = features.item(deps.get_store(), name, feature_id, role=role, base=_base())
        return _html("item", doc=json.loads(text), name=name, mapped=LAYERS[name].is_feature)
    text = features.item(deps.get_store(), name, feature_id, role=role, base=_base(), crs=crs)
    return _json(text, metadata.GEOJSON, **{"Content-Crs": f"<{crs}>"})


@bp.route("/<path:rest>")
def unknown(rest: str):
    raise errors.CollectionNotFound(f"no resource /ogc/{rest}; start at /ogc")
