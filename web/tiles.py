"""Vector tiles of every feature layer and one feature's popup, as the caller's role may see them.

A thin adapter: tile maths and encoding live in geo.tiles (the store may cut tiles itself:
``Store.vector_tile``), who sees what in the access policy; this module maps HTTP onto them
and adds the cache headers that let browsers revalidate tiles cheaply (ETag, 304).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from flask import Blueprint, Response, abort, current_app, jsonify, request
from flask_babel import gettext as _

from geo.layers import FEATURE_LAYERS, get_layer
from geo.store import NotFound
from geo.tiles import Tile, TileCache, TileError
from planner import catalogue as cat
from web import deps
from web.auth import current_role
from web.maps import popup_html

bp = Blueprint("tiles", __name__)

MVT_MEDIA = "application/vnd.mapbox-vector-tile"
EXTENSION = "zoneplan_tiles"
#: What the map styles and labels each layer by (the key is always carried too).
STYLE_PROPERTIES: dict[str, tuple[str, ...]] = {
    "zone": ("name",),
    "expansion": ("name", "status"),
    "plots": ("status", "area_ha"),
    "roads": ("name", "status", "class"),
    "rail_lines": ("name", "status", "kind"),
    "prot_zones": ("name", "status", "kind"),
}
ASSET_PROPERTIES = ("name", "status")
#: Plot fields the public and investors never see (the integrity issue's policy).
PRIVATE_PLOT_FIELDS = frozenset({"resident", "project", "invest", "jobs", "power_kw",
                                 "water_m3d"})


@dataclass(frozen=True)
class LayerView:
    """What one role sees of one layer: the rows (``where``) and the fields."""

    layer: str
    where: dict[str, list[str]] | None
    fields: frozenset[str]

    @property
    def key(self) -> str:
        """A short token naming this view (tile cache and ETag key)."""
        text = json.dumps([self.layer, self.where, sorted(self.fields)], sort_keys=True)
        return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()

    def properties(self) -> tuple[str, ...]:
        """The styling properties of the layer this view may carry."""
        wanted = STYLE_PROPERTIES.get(self.layer, ASSET_PROPERTIES)
        return tuple(name for name in wanted if name in self.fields)


def layer_view(layer: str, role: str) -> LayerView:
    """The role's view of a feature layer.

    Raises
    ------
    NotFound
        For unknown or non-feature layers and layers the role may not read (a hidden
        layer looks exactly like a missing one).
    """
    if layer not in FEATURE_LAYERS:
        raise NotFound(f"no feature layer {layer!r}")
    try:
        cat.check_readable(layer, role)
    except cat.Forbidden:
        raise NotFound(f"no feature layer {layer!r}") from None
    lyr = get_layer(layer)
    fields = {f.name for f in lyr.fields if not f.system}
    if layer == "plots" and not cat.is_staff(role):
        fields -= PRIVATE_PLOT_FIELDS
    return LayerView(layer, cat.layer_where(layer, role), frozenset(fields))


def tile_cache() -> TileCache:
    """The app's tile cache (``ZONEPLAN_TILE_CACHE_BYTES``, default 64 MB)."""
    cache = current_app.extensions.get(EXTENSION)
    if cache is None:
        cache = current_app.extensions.setdefault(EXTENSION, TileCache(
            int(current_app.config.get("ZONEPLAN_TILE_CACHE_BYTES", 64 * 1024 * 1024))))
    return cache


def _cache_headers(response: Response, etag: str) -> Response:
    response.set_etag(etag)
    # Tiles follow the store: revalidate every time (a 304 costs one revision query).
    # The answer depends on who asks, so shared caches must key on the credentials.
    response.headers["Cache-Control"] = "private, no-cache" if current_role() != "public" \
        else "public, no-cache"
    response.vary.update(("Authorization", "Cookie"))
    return response


@bp.get("/tiles/<layer>/<int:z>/<int:x>/<int:y>.mvt")
def tile(layer: str, z: int, x: int, y: int):
    """One Mapbox Vector Tile (XYZ, EPSG:3857, extent 4096) of ``layer``; empty body when no
    feature lies in it; 404 for unknown layers and addresses outside the pyramid."""
    try:
        address = Tile(z, x, y)
        view = layer_view(layer, current_role())
    except (TileError, NotFound):
        abort(404)
    store = deps.get_store()
    revision = store.revision()
    etag = hashlib.blake2b(f"{view.key}|{revision}|{z}/{x}/{y}".encode(),
                           digest_size=12).hexdigest()
    if etag in request.if_none_match:
        return _cache_headers(Response(status=304), etag)
    data = tile_cache().get_or_build(layer, view.key, revision, address, lambda: store.vector_tile(
        layer, address, properties=view.properties(), where=view.where))
    return _cache_headers(Response(data, mimetype=MVT_MEDIA), etag)


@bp.get("/map/features/<layer>/<key>")
def feature_popup(layer: str, key: str):
    """One feature's popup (escaped HTML in ``{"html": ...}``) as the caller may see it; 404 for
    what the role may not see."""
    try:
        view = layer_view(layer, current_role())
        row = deps.get_store().get(layer, key)
    except NotFound:
        return jsonify({"error": _("Not found."), "field": None}), 404
    for name, allowed in (view.where or {}).items():
        if row.get(name) not in allowed:
            return jsonify({"error": _("Not found."), "field": None}), 404
    shown = {name: value for name, value in row.items() if name in view.fields}
    lines: list[str] = []
    if layer == "plots":
        record = deps.servicing_records().get(key)
        lines = deps.explain(record, translate=_) if record else []
    return jsonify({"layer": layer, "id": key, "html": popup_html(layer, shown, _, lines)})

