"""HTML pages: the zone map and the language switch."""
from __future__ import annotations

import datetime as dt
from typing import Any

from flask import (Blueprint, current_app, redirect, render_template, request, session,
                   url_for)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user

from web import deps
from planner.visibility import PlotView, plot_view
from web.auth import current_role, current_username, safe_next
from web.maps import RenderedMap, build_zone_map, legend, render_map, tr_value
from web.security import add_nonces
from usecases import accounts

bp = Blueprint("pages", __name__)


def _static(path: str) -> str:
    return url_for("static", filename=path)


def servicing_lines() -> dict[str, list[str]]:
    """Each plot's servicing answer as sentences in the reader's language.

    Empty until planner.servicing lands; a failure there is logged and the map is drawn
    without the answers rather than not at all.
    """
    try:
        records = deps.servicing_records()
        return {pid: deps.explain(rec, translate=_) for pid, rec in records.items()}
    except Exception:  # noqa: BLE001 - the map must not depend on the planner's health
        current_app.logger.exception("servicing answers failed; the map shows none")
        return {}


def zone_map(view: PlotView) -> RenderedMap:
    """The zone map as ``view`` sees it, in this language, cached until the store changes."""
    config = current_app.config
    key = ("zone_map", view.key, str(get_locale()), dt.date.today(),
           config.get("ZONEPLAN_TILES_URL"), config.get("ZONEPLAN_TILES_ATTRIBUTION"))

    def build() -> RenderedMap:
        snapshot = dict(deps.snapshot())
        snapshot["plots"] = view.visible(snapshot["plots"])
        m = build_zone_map(snapshot, translate=_, static_url=_static,
                           servicing=servicing_lines(),
                           tiles_url=config.get("ZONEPLAN_TILES_URL"),
                           tiles_attribution=config.get("ZONEPLAN_TILES_ATTRIBUTION"))
        return render_map(m)
    return deps.deps().cached(key, build)


def _map_context(rendered: RenderedMap, view: PlotView) -> dict[str, Any]:
    return {"map_header": add_nonces(rendered.header), "map_html": rendered.html,
            "map_script": rendered.script, "map_id": rendered.map_id,
            "legend": legend(_, view.statuses)}


@bp.route("/")
def index():
    """The zone map for everyone, showing what the reader's role may see."""
    view = plot_view(current_role(), current_username())
    return render_template("map.html", **_map_context(zone_map(view), view))


@bp.route("/lang/<code>")
def set_language(code: str):
    """Switch the interface language; remembered in the session and, when logged in, the account."""
    if code in current_app.config["LANGUAGES"]:
        session["lang"] = code
        if current_user.is_authenticated and current_user.via == "session":
            accounts.set_lang(deps.get_store(), current_user.username, code)
    target = request.args.get("next") or request.referrer or "/"
    if target.startswith(request.host_url):
        target = "/" + target[len(request.host_url):]
    return redirect(safe_next(target))


@bp.app_context_processor
def _page_helpers() -> dict[str, Any]:
    def page_exists(path: str) -> bool:
        """Whether some blueprint serves ``path`` (e.g. the catalogue at /plots)."""
        return any(rule.rule == path for rule in current_app.url_map.iter_rules())
    return {"page_exists": page_exists, "tv": lambda code: tr_value(code, _)}
