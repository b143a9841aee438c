"""The planner's access design page: run designs as background jobs, compare two, commit one.

A thin adapter over :mod:`usecases.access_design` and the shared job runner; the page's
script polls ``/api/jobs/<id>`` and cancels through ``/api/jobs/<id>/cancel``.
"""

from __future__ import annotations

import math
from typing import Any

from flask import Blueprint, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _

from geo.layers import LAYERS
from geo.store import NotFound
from planner.corridors import KINDS
from usecases.access_design import TARGET_SETS, AccessDesignError, commit_design, design_job
from web import deps
from web.auth import api_error, api_role_required, current_username, role_required
from web.i18n import leaflet_texts
from web.labels import tr_label
from web.maps import LAYER_STYLES

bp = Blueprint("planner_access", __name__)

JOB_KIND = "access_design"
MAX_TIME_LIMIT_S = 600.0
MAX_FREIGHT_YEARS = 100.0
#: Layers drawn under the proposed segments.
MAP_LAYERS = (
    "expansion",
    "prot_zones",
    "plots",
    "roads",
    "rail_lines",
    "power_lines",
    "substations",
    "rail_stations",
    "gates",
)


def _strings() -> dict[str, str]:
    """Every sentence access.js shows, in the reader's language."""
    return {
        "run": _("Run design"),
        "running": _("Designing…"),
        "cancel": _("Cancel"),
        "cancelled": _("The design was cancelled."),
        "failed": _("The design failed:"),
        "network": _("The server could not be reached."),
        "run_label": _("Run %(n)s", n="{n}"),
        "cost": _("Construction cost"),
        "lowerBound": _("Lower bound"),
        "gap": _("Gap"),
        "optimal": _("proven optimal"),
        "length": _("New length, m"),
        "segments": _("Segments"),
        "connected": _("Plots connected"),
        "served": _("Already served"),
        "unreachable": _("Unreachable"),
        "freight": _("Freight cost"),
        "total": _("Total"),
        "saving": _("Saving against construction alone"),
        "time": _("Time, s"),
        "method": _("Method"),
        "commit": _("Commit as planned"),
        "due": _("Due"),
        "committed": _("Stored as planned %(layer)s: %(ids)s.", layer="{layer}", ids="{ids}"),
        "notCommitted": _("Nothing was stored:"),
        "none": _("none"),
        "compare": _("Compare runs"),
        "serves": _("serves"),
        "tenge": _("tenge"),
        "dueNeeded": _("Give the due date of the new segments."),
    }


def _config() -> dict[str, Any]:
    store = deps.get_store()
    areas = store.read("expansion")
    styles = {s.name: {"style": dict(s.style), "radius": s.radius} for s in LAYER_STYLES}
    return {
        "locale": str(get_locale()),
        "areas": [
            {"id": str(r["exp_id"]), "name": str(r["name"] or "")}
            for r in areas.drop(columns="geometry").to_dict("records")
        ],
        "kinds": {"road": _("road"), "rail": _("rail spur"), "power": _("10 kV feeder")},
        "targets": {
            "all": _("all free plots"),
            "rail": _("plots needing rail"),
            "power": _("plots with a power demand"),
        },
        "urls": {
            "layer": url_for("api.get_layer", name="__layer__"),
            "run": url_for("planner_access.run"),
            "commit": url_for("planner_access.commit"),
            "job": url_for("api.get_job", job_id="__id__"),
            "cancel": url_for("api.cancel_job", job_id="__id__"),
        },
        "layers": [
            {
                "name": n,
                "label": tr_label(LAYERS[n].label, _),
                "key": LAYERS[n].key,
                **styles.get(n, {"style": {}}),
            }
            for n in MAP_LAYERS
        ],
        "leaflet": leaflet_texts(_),
        "text": _strings(),
    }


@bp.route("/planner/access")
@role_required("planner")
def page():
    """Pick an area and a kind, run designs, compare two, commit one."""
    return render_template("planner_access.html", config=_config())


def _number(body: dict, name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value in (None, ""):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise AccessDesignError(f"{name} must be a number") from None
    if not (math.isfinite(number) and low < number <= high):
        raise AccessDesignError(f"{name} must be above {low:g} and at most {high:g}")
    return number


@bp.route("/planner/access/run", methods=["POST"])
@api_role_required("planner")
def run():
    """Start a design job: ``{area, kind, targets, freight_years, time_limit}`` -> ``{job_id}``."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return api_error("send a JSON object", 400)
    try:
        kind = body.get("kind")
        if kind not in KINDS:
            raise AccessDesignError(f"kind must be one of {', '.join(KINDS)}")
        area = str(body.get("area") or "")
        known = set(deps.get_store().read("expansion")["exp_id"].astype(str))
        if area not in known:
            raise AccessDesignError(f"unknown expansion area {area[:40]!r}")
        targets = body.get("targets") or "all"
        if targets not in TARGET_SETS:
            raise AccessDesignError(f"targets must be one of {', '.join(TARGET_SETS)}")
        params = {
            "area": area,
            "kind": kind,
            "targets": targets,
            "freight_years": _number(body, "freight_years", 0, MAX_FREIGHT_YEARS),
            "time_limit": _number(body, "time_limit", 0, MAX_TIME_LIMIT_S),
        }
        if params["freight_years"] is not None and kind == "power":
            raise AccessDesignError("freight applies to roads and rail spurs, not to power feeders")
    except AccessDesignError as err:
        return api_error(str(err), 400)
    store = deps.get_store()
    job_id = deps.get_jobs().submit(
        JOB_KIND, params, design_job(store, params), user=current_username() or "unknown"
    )
    return {"job_id": job_id}, 202


@bp.route("/planner/access/commit", methods=["POST"])
@api_role_required("planner")
def commit():
    """Store a finished design's segments as planned assets: ``{job_id, due}``."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return api_error("send a JSON object", 400)
    try:
        job = deps.get_jobs().get(str(body.get("job_id") or ""))
    except NotFound:
        return api_error("no such design run", 404, "job_id")
    if job["kind"] != JOB_KIND or job["state"] != "done" or not job.get("result"):
        return api_error("that run has not finished a design", 409, "job_id")
    try:
        done = commit_design(
            deps.get_store(),
            job["result"],
            user=current_username() or "unknown",
            due=str(body.get("due") or ""),
        )
    except AccessDesignError as err:
        return api_error(str(err), 400)
    return done, 201
