"""The subdivision page: choose or draw an area, preview streets and plots through the job
runner, regenerate with other parameters, commit. A thin adapter over usecases.subdivision."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _

from geo.store import NotFound
from planner.parcels import ParcelInputError, polygon_from_geojson
from planner.subdivision import METHODS, SubdivisionError, SubdivisionParams, params_dict
from usecases import subdivision
from web import deps
from web.auth import api_error, api_role_required, current_username, role_required
from web.i18n import geoman_texts, leaflet_texts
from web.maps import LAYER_STYLES, PLOT_COLOURS

bp = Blueprint("subdivide", __name__)

JOB_KIND = "subdivision"
#: Map layers under the preview, bottom to top.
MAP_LAYERS = (
    "zone",
    "expansion",
    "prot_zones",
    "plots",
    "roads",
    "power_lines",
    "rail_lines",
    "storm_sewers",
    "gates",
)
_DEFAULTS = SubdivisionParams()


def _fields() -> list[dict[str, Any]]:
    """The numeric parameters of the form: name, label, default, step."""

    def field(name: str, label: str, step: str = "any") -> dict[str, Any]:
        value = getattr(_DEFAULTS, name)
        return {
            "name": name,
            "label": label,
            "value": "" if value is None else f"{value:g}",
            "step": step,
        }

    return [
        field("min_ha", _("Smallest plot, ha")),
        field("max_ha", _("Largest plot, ha")),
        field("target_ha", _("Target plot, ha (blank: middle of the range)")),
        field("frontage_m", _("Minimum frontage, m")),
        field("max_depth_ratio", _("Largest depth / frontage")),
        field("street_spacing_m", _("Street spacing, m (blank: from the target)")),
        field("row_m", _("Right of way of local streets, m")),
        field("spine_row_m", _("Right of way of the spine, m")),
        field("setback_rail_m", _("Setback from rail lines, m")),
        field("setback_power_m", _("Setback from power lines, m")),
        field("setback_storm_m", _("Setback from storm sewers, m")),
        field("setback_prot_m", _("Setback from protection zones, m")),
        field("large_share", _("Share of land in large lots (0–1)")),
        field("large_ha", _("Large lot, ha (blank: 0.8 × the largest)")),
    ]


def _strings() -> dict[str, str]:
    """Every sentence subdivide.js shows, in the reader's language."""
    return {
        "drawFirst": _("Draw the area on the map first (polygon tool, top left)."),
        "queued": _("Waiting for a free worker…"),
        "running": _("Subdividing…"),
        "failed": _("The subdivision failed:"),
        "cancelled": _("The preview was cancelled."),
        "network": _("The server could not be reached."),
        "ready": _("Preview ready: nothing is stored until you commit."),
        "committed": _(
            "Stored %(plots)s candidate plots and %(roads)s planned roads; "
            "%(removed)s replaced candidate plots deleted.",
            plots="{plots}",
            roads="{roads}",
            removed="{removed}",
        ),
        "notCommitted": _("Nothing was stored:"),
        "chosen": _("chosen"),
        "plot": _("New plot"),
        "street": _("Street"),
        "existingStreet": _("Existing road"),
        "removed": _("Replaced plot"),
        "rightOfWay": _("right of way"),
        "outOfRange": _("outside the area range"),
        "frontage": _("frontage"),
        "ha": _("ha"),
        "m": _("m"),
        "warnings": _("Notes"),
    }


def _metric_rows() -> list[list[str]]:
    return [
        ["plots", _("Plots")],
        ["utilisation", _("Utilisation of net land")],
        ["frontage_share", _("With street frontage")],
        ["plotted_ha", _("Plotted, ha")],
        ["net_developable_ha", _("Net developable, ha")],
        ["deviation_mean", _("Area off target, mean")],
        ["deviation_worst", _("Area off target, worst")],
        ["out_of_range", _("Outside the area range")],
        ["compactness_mean", _("Compactness")],
        ["elongation_mean", _("Elongation")],
        ["too_deep", _("Deeper than allowed")],
        ["street_land_ha", _("Land in new streets, ha")],
        ["new_street_km", _("New street length, km")],
        ["remnants", _("Remnants left open")],
        ["elapsed_s", _("Seconds")],
    ]


def _config() -> dict[str, Any]:
    styles = {s.name: dict(s.style) for s in LAYER_STYLES}
    return {
        "locale": str(get_locale()),
        "urls": {
            "layer": url_for("api.get_layer", name="__layer__"),
            "preview": url_for("subdivide.start_preview"),
            "commit": url_for("subdivide.commit"),
            "job": url_for("api.get_job", job_id="__id__"),
            "cancel": url_for("api.cancel_job", job_id="__id__"),
            "workspace": url_for("planner.workspace"),
        },
        "layers": [{"name": n, "style": styles.get(n, {})} for n in MAP_LAYERS],
        "plotColours": PLOT_COLOURS,
        "metrics": _metric_rows(),
        "leaflet": leaflet_texts(_),
        "geoman": geoman_texts(_),
        "text": _strings(),
    }


@bp.route("/planner/subdivide")
@role_required("planner")
def page():
    """The subdivision page."""
    areas = deps.get_store().read("expansion")
    return render_template(
        "subdivide.html",
        config=_config(),
        fields=_fields(),
        methods=METHODS,
        areas=areas[["exp_id", "name", "area_ha"]].to_dict("records"),
    )


def _request_params() -> tuple[dict[str, Any], Any]:
    """(job parameters, error response or None) from the posted JSON."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return {}, api_error(_("Send the form as a JSON object."), 400)
    exp_id = (str(body.get("exp_id") or "").strip()) or None
    geometry = body.get("geometry") if exp_id is None else None
    if exp_id is None and geometry is None:
        return {}, api_error(_("Choose an expansion area or draw one."), 422, "exp_id")
    try:
        params = subdivision.read_params(body.get("params") or {})
        if geometry is not None:
            polygon_from_geojson(geometry, epsg=deps.get_store().epsg)
    except ParcelInputError as err:
        return {}, api_error(str(err), 422, err.field)
    except SubdivisionError as err:
        return {}, api_error(str(err), 422, "params")
    return {"exp_id": exp_id, "geometry": geometry, "params": params_dict(params)}, None


@bp.route("/planner/subdivide/preview", methods=["POST"])
@api_role_required("planner")
def start_preview():
    """Start a preview job; answers 202 with the job's id and where to poll it."""
    job_params, error = _request_params()
    if error is not None:
        return error
    job_id = deps.get_jobs().submit(
        JOB_KIND, job_params, subdivision.preview_job, user=current_username() or "unknown"
    )
    response = jsonify({"job_id": job_id, "poll": url_for("api.get_job", job_id=job_id)})
    response.status_code = 202
    return response


@bp.route("/planner/subdivide/commit", methods=["POST"])
@api_role_required("planner")
def commit():
    """Commit the plan of a finished preview job; 409 when the store changed since."""
    body = request.get_json(silent=True)
    job_id = str(body.get("job_id") or "") if isinstance(body, dict) else ""
    try:
        job = deps.get_jobs().get(job_id)
    except NotFound:
        return api_error(_("There is no preview %(id)s; preview again.", id=job_id), 404, "job_id")
    if job["kind"] != JOB_KIND or job["state"] != "done" or not job.get("result"):
        return api_error(
            _("Preview %(id)s has not finished; wait for it or preview again.", id=job_id),
            409,
            "job_id",
        )
    try:
        done = subdivision.commit(
            deps.get_store(), job["result"].get("plan"), user=current_username() or "unknown"
        )
    except subdivision.SubdivisionConflict as err:
        return api_error(str(err), 409)
    except SubdivisionError as err:
        return api_error(str(err), 422)
    response = jsonify(done)
    response.status_code = 201
    return response
