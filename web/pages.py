"""HTML pages: the zone map and the language switch."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user

from geo.crs import WGS84_EPSG, WORKING_EPSG, transformer
from planner.visibility import PlotView, plot_view
from usecases import accounts
from web import deps
from web.auth import current_role, current_username, safe_next
from web.labels import tr_value
from web.maps import RenderedMap, build_zone_map, legend, render_map
from web.security import add_nonces

bp = Blueprint("pages", __name__)


def _static(path: str) -> str:
    return url_for("static", filename=path)


def zone_bounds() -> tuple[float, float, float, float] | None:
    """The zone's bounds in WGS84 (else the expansion areas', else the plots'), from the
    store's extents: no feature is read."""
    store = deps.get_store()
    for name in ("zone", "expansion", "plots"):
        extent = store.extent(name)
        if extent is not None:
            return transformer(WORKING_EPSG, WGS84_EPSG).transform_bounds(*extent)
    return None


def zone_map() -> RenderedMap:
    """The rendered zone map for this language (tiles carry the data; only the view's
    bounds follow the store)."""
    config = current_app.config
    key = (
        "zone_map",
        str(get_locale()),
        config.get("ZONEPLAN_TILES_URL"),
        config.get("ZONEPLAN_TILES_ATTRIBUTION"),
    )

    def build() -> RenderedMap:
        tiles = url_for("tiles.tile", layer="__layer__", z=0, x=0, y=0).replace(
            "/0/0/0.mvt", "/{z}/{x}/{y}.mvt"
        )
        m = build_zone_map(
            zone_bounds(),
            translate=_,
            static_url=_static,
            tiles=tiles,
            pick=url_for("tiles.pick"),
            feature=url_for("tiles.feature_popup", layer="__layer__", key="__id__"),
            search=url_for("api.search_plots"),
            tiles_url=config.get("ZONEPLAN_TILES_URL"),
            tiles_attribution=config.get("ZONEPLAN_TILES_ATTRIBUTION"),
        )
        return render_map(m)

    return deps.deps().cached(key, build, ("zone", "expansion", "plots"))


def _map_context(rendered: RenderedMap, view: PlotView) -> dict[str, Any]:
    return {
        "map_header": add_nonces(rendered.header),
        "map_html": rendered.html,
        "map_script": rendered.script,
        "map_id": rendered.map_id,
        "legend": legend(_, view.statuses),
        "printed": dt.date.today().isoformat(),
    }


@bp.route("/")
def index():
    """The zone map for everyone, showing what the reader's role may see."""
    view = plot_view(current_role(), current_username())
    return render_template("map.html", **_map_context(zone_map(), view))


@bp.route("/lang/<code>")
def set_language(code: str):
    """Switch the interface language; remembered in the session and, when logged in, the account."""
    if code in current_app.config["LANGUAGES"]:
        session["lang"] = code
        if current_user.is_authenticated and current_user.via == "session":
            accounts.set_lang(deps.get_store(), current_user.username, code)
    target = request.args.get("next") or request.referrer or "/"
    if target.startswith(request.host_url):
        target = "/" + target[len(request.host_url) :]
    return redirect(safe_next(target))


@bp.app_context_processor
def _page_helpers() -> dict[str, Any]:
    def page_exists(path: str) -> bool:
        """Whether some blueprint serves ``path`` (e.g. the catalogue at /plots)."""
        return any(rule.rule == path for rule in current_app.url_map.iter_rules())

    return {"page_exists": page_exists, "tv": lambda code: tr_value(code, _)}
