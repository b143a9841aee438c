"""Vector tiles of every feature layer and one feature's popup, as the caller's role may see them.

A thin adapter: tile maths and encoding live in geo.tiles (the store may cut tiles itself:
``Store.vector_tile``), who sees what in the access policy; this module maps HTTP onto them
and adds the cache headers that let browsers revalidate tiles cheaply (ETag, 304).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from flask import Blueprint, Response, abort, current_app, jsonify, request
from flask_babel import gettext as _
from flask_babel import ngettext
from markupsafe import escape

from geo import overview
from geo.crs import WGS84_EPSG, transformer
from geo.layers import FEATURE_LAYERS, get_layer
from geo.store import NotFound
from geo.tiles import MAX_ZOOM, Tile, TileCache, TileError, metres_per_pixel, nearest_within
from planner import visibility
from web import deps
from web.auth import current_role
from web.labels import popup_html
from web.maps import pick_pixels

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

    def shows(self, row: dict[str, Any]) -> bool:
        """Whether this view includes ``row``."""
        return all(row.get(name) in allowed for name, allowed in (self.where or {}).items())

    def properties(self) -> tuple[str, ...]:
        """The styling properties of the layer this view may carry."""
        wanted = STYLE_PROPERTIES.get(self.layer, ASSET_PROPERTIES)
        return tuple(name for name in wanted if name in self.fields)


def layer_view(layer: str, role: str) -> LayerView:
    """The role's view of a feature layer, as the access policy (planner.visibility) says.

    Raises
    ------
    NotFound
        For unknown or non-feature layers and layers the role may not read (a hidden
        layer looks exactly like a missing one).
    """
    if layer not in FEATURE_LAYERS:
        raise NotFound(f"no feature layer {layer!r}")
    try:
        visibility.check_readable(layer, role)
    except visibility.Forbidden:
        raise NotFound(f"no feature layer {layer!r}") from None
    system = {f.name for f in get_layer(layer).fields if f.system}
    fields = frozenset(visibility.layer_fields(layer, role)) - system
    where = visibility.plot_view(role).where() if layer == "plots" else None
    return LayerView(layer, where, fields)


def tile_cache() -> TileCache:
    """The app's tile cache (``ZONEPLAN_TILE_CACHE_BYTES``, default 64 MB)."""
    cache = current_app.extensions.get(EXTENSION)
    if cache is None:
        cache = current_app.extensions.setdefault(
            EXTENSION,
            TileCache(int(current_app.config.get("ZONEPLAN_TILE_CACHE_BYTES", 64 * 1024 * 1024))),
        )
    return cache


def _cache_headers(response: Response, etag: str) -> Response:
    response.set_etag(etag, weak=True)  # weak: compression keeps it as it is
    # Tiles follow the store: revalidate every time (a 304 costs one revision query).
    # The answer depends on who asks, so shared caches must key on the credentials.
    response.headers["Cache-Control"] = (
        "private, no-cache" if current_role() != "public" else "public, no-cache"
    )
    response.vary.update(("Authorization", "Cookie"))
    return response


@bp.get("/tiles/<layer>/<int:z>/<int:x>/<int:y>.mvt")
def tile(layer: str, z: int, x: int, y: int):
    """One Mapbox Vector Tile (XYZ, EPSG:3857, extent 4096) of ``layer``; empty body when no
    feature lies in it; 404 for unknown layers and addresses outside the pyramid.

    ``layer`` may also name several layers joined by commas (``zone,roads,plots``): one tile
    holding one MVT layer per store layer in that order, so a map of many layers makes one
    request per tile. Each layer is cut, cached and validated on its own; a protobuf
    message's repeated fields concatenate, so the tile is their bytes end to end.
    """
    names = layer.split(",")
    try:
        address = Tile(z, x, y)
        if len(set(names)) != len(names):
            raise NotFound(f"layer named twice in {layer!r}")
        views = [layer_view(name, current_role()) for name in names]
    except (TileError, NotFound):
        abort(404)
    store = deps.get_store()
    found = store.revisions(names)  # one query for every layer of a map tile
    revisions = [found[name] for name in names]
    etag = hashlib.blake2b(
        "|".join(f"{v.key}:{r}" for v, r in zip(views, revisions)).encode()
        + f"|{z}/{x}/{y}".encode(),
        digest_size=12,
    ).hexdigest()
    if request.if_none_match.contains_weak(etag):
        return _cache_headers(Response(status=304), etag)
    data = b"".join(
        _cut(store, view, revision, address) for view, revision in zip(views, revisions)
    )
    return _cache_headers(Response(data, mimetype=MVT_MEDIA), etag)


def _cut(store: Any, view: LayerView, revision: str, address: Tile) -> bytes:
    """One layer's tile from the cache, cut by the store on a miss."""

    def cut() -> bytes:
        return store.vector_tile(
            view.layer, address, properties=view.properties(), where=view.where
        )

    return tile_cache().get_or_build(view.layer, view.key, revision, address, cut)


def _popup(view: LayerView, row: dict[str, Any], epsg: int) -> dict[str, Any]:
    """The feature's popup as the view may see it: escaped HTML, plots with their servicing."""
    key = str(row[get_layer(view.layer).key])
    shown = {name: value for name, value in row.items() if name in view.fields}
    lines: list[str] = []
    if view.layer == "plots":
        record = deps.servicing_record(key)
        lines = deps.explain(record, translate=_) if record else []
    geom = row.get("geometry")
    bbox = (
        None
        if geom is None or geom.is_empty
        else [round(v, 7) for v in transformer(epsg, WGS84_EPSG).transform_bounds(*geom.bounds)]
    )
    return {
        "layer": view.layer,
        "id": key,
        "bbox": bbox,
        "html": popup_html(view.layer, shown, _, lines),
    }


def _not_found():
    return jsonify({"error": _("Not found."), "field": None}), 404


@bp.get("/map/features/<layer>/<key>")
def feature_popup(layer: str, key: str):
    """One feature's popup (``{"layer", "id", "html"}``, the HTML escaped) as the caller may
    see it; 404 for what the role may not see."""
    store = deps.get_store()
    try:
        view = layer_view(layer, current_role())
        row = store.get(layer, key)
    except NotFound:
        return _not_found()
    if not view.shows(row):
        return _not_found()
    return jsonify(_popup(view, row, store.epsg))


def _bad(message: str, field: str):
    return jsonify({"error": message, "field": field}), 400


@bp.get("/map/features")
def pick():
    """What lies under the pointer: the popup of the topmost feature within a few pixels of
    ``at=lon,lat`` at ``zoom`` among ``layers`` (topmost first), or nulls when nothing does."""
    try:
        lon, lat = (float(v) for v in request.args.get("at", "").split(","))
        zoom = int(request.args.get("zoom", ""))
    except ValueError:
        return _bad("give at=lon,lat and zoom=0..22", "at")
    if not (-180 <= lon <= 180 and -85.06 <= lat <= 85.06 and 0 <= zoom <= MAX_ZOOM):
        return _bad("at must lie on the Web Mercator map and zoom in 0..22", "at")
    names = [n for n in request.args.get("layers", "").split(",") if n][: len(FEATURE_LAYERS)]
    store = deps.get_store()
    x, y = transformer(WGS84_EPSG, store.epsg).transform(lon, lat)
    point = shapely.Point(x, y)
    pixel = metres_per_pixel(zoom, lat)
    for name in names:
        try:
            view = layer_view(name, current_role())
        except NotFound:
            continue
        tolerance = pick_pixels(name) * pixel
        box = (x - tolerance, y - tolerance, x + tolerance, y + tolerance)
        rows = store.read(name, bbox=box, where=view.where)
        geoms = np.asarray(rows.geometry.values, dtype=object)
        blocks = _blocks(store, view, zoom, box) if name == "plots" else None
        if blocks is not None:  # plots merged into blocks at this zoom are not picked alone
            geoms[~store.drawn_alone(blocks[0], shapely.bounds(geoms).reshape(-1, 4))] = None
        hit = nearest_within(geoms, point, tolerance)
        if hit is not None:
            key = rows[get_layer(name).key].iloc[hit]
            return jsonify(_popup(view, store.get(name, key), store.epsg))
        if blocks is not None:
            near = _blocks_at(blocks[1], point, tolerance)
            if near:
                return jsonify(_block_popup(near, store.epsg))
    return jsonify({"layer": None, "id": None, "bbox": None, "html": None})


def _blocks(
    store: Any, view: LayerView, zoom: int, box: tuple[float, float, float, float]
) -> tuple[int, list[overview.Block]] | None:
    """The block level of ``zoom`` and the blocks near ``box`` the view may see; None when
    plots are single features at this zoom (or the store keeps no overview)."""
    level = overview.level_of(zoom)
    usable, statuses = overview.statuses_of(view.where)
    if level is None or not usable:
        return None
    found = store.plot_blocks(level, box, statuses)
    return None if found is None else (level, found)


def _blocks_at(
    blocks: list[overview.Block], point: shapely.Point, tolerance: float
) -> list[overview.Block]:
    """The blocks nearest ``point`` within ``tolerance`` (those of every status that overlap
    there), most plots first."""
    if not blocks:
        return []
    distance = shapely.distance(np.asarray([b.geometry for b in blocks], dtype=object), point)
    best = float(np.min(distance))
    if best > tolerance:
        return []
    return sorted(
        (b for b, d in zip(blocks, distance.tolist()) if d <= best), key=lambda b: -b.plots
    )


def _block_popup(blocks: list[overview.Block], epsg: int) -> dict[str, Any]:
    """What a click on blocks answers: how many plots they hold, of which statuses, and
    where to zoom in."""
    plots = sum(b.plots for b in blocks)
    bounds = shapely.bounds(shapely.union_all([b.geometry for b in blocks]))
    bbox = [round(v, 7) for v in transformer(epsg, WGS84_EPSG).transform_bounds(*bounds)]
    text = ngettext(
        "%(num)d plot here: zoom in to pick one", "%(num)d plots here: zoom in to pick one", plots
    )
    button = _("Zoom in")
    html = (
        f'<p class="zp-block">{escape(text)}</p>'
        f'<button type="button" class="zp-block-zoom">{escape(button)}</button>'
    )
    return {
        "layer": "plots",
        "id": None,
        "block": {
            "status": blocks[0].status,
            "plots": plots,
            "statuses": {b.status: b.plots for b in blocks},
        },
        "bbox": bbox,
        "html": html,
    }
