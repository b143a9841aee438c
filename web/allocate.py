"""The planner's allocation page: pick applications, plots, objective and time limit, run the
optimiser as a background job, see the proposal on the map, accept all or some of it, and
import applications from a CSV file.

A thin adapter: the page's script (static/allocate.js) talks to the /api/allocations and
/api/applications/import operations of web/api_allocate.py.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, render_template, url_for
from flask_babel import get_locale
from flask_babel import gettext as _

from geo.layers import LAYERS
from planner.allocation_tables import PENDING
from usecases.allocation import DEFAULT_TIME_LIMIT_S, MAX_TIME_LIMIT_S
from web import deps
from web.auth import role_required
from web.i18n import leaflet_texts
from web.labels import tr_label
from web.maps import LAYER_STYLES, PLOT_COLOURS, STATUS_STROKES

bp = Blueprint("allocate", __name__)

#: Layers drawn under the proposal (vector tiles), bottom to top.
MAP_LAYERS = ("zone", "expansion", "plots", "roads", "power_lines", "substations", "gates")


def objectives() -> list[dict[str, str]]:
    """Each objective with what it maximises, in words."""
    return [
        {
            "key": "weighted",
            "label": _("Weighted score"),
            "help": _(
                "A score from 0 to 1 for each application placed: %(invest)s its investment, "
                "%(jobs)s its jobs, and %(other)s each its priority, how closely the plot fits "
                "the area asked for, how near the plot is to a gate, and whether it is the plot "
                "applied for.",
                invest="35%",
                jobs="25%",
                other="10%",
            ),
        },
        {
            "key": "investment",
            "label": _("Investment"),
            "help": _("The most tenge of investment placed, whatever the number of projects."),
        },
        {
            "key": "jobs",
            "label": _("Jobs"),
            "help": _("The most jobs created by the applications placed."),
        },
        {
            "key": "count",
            "label": _("Number of applications"),
            "help": _("As many applications placed as possible, each counting the same."),
        },
    ]


def _strings() -> dict[str, str]:
    """Every sentence allocate.js shows, in the reader's language."""
    return {
        "queued": _("Waiting for a free worker…"),
        "running": _("Solving…"),
        "best": _("Best so far: %(value)s, gap %(gap)s", value="{value}", gap="{gap}"),
        "cancelled": _("The run was cancelled."),
        "failed": _("The run failed:"),
        "network": _("The server could not be reached."),
        "busy": _("Another allocation is running:"),
        "noApps": _("Choose at least one application."),
        "optimised": _("Optimised"),
        "fcfs": _("First come, first served"),
        "value": _("Objective value"),
        "count": _("Applications placed"),
        "jobs": _("Jobs"),
        "investment": _("Investment, tenge"),
        "gap": _("Proven gap"),
        "optimal": _("proven optimal"),
        "seconds": _("Seconds"),
        "firstProposal": _("First proposal after, s"),
        "application": _("Application"),
        "plot": _("Plot"),
        "appliedFor": _("applied for"),
        "accepted": _("%(n)s applications accepted; their plots are reserved.", n="{n}"),
        "notAccepted": _("Nothing was reserved:"),
        "stale": _("The store changed since the run. Untick these or run the allocation again:"),
        "rerun": _("Run again"),
        "nowStatus": _("now %(status)s", status="{status}"),
        "noneSelected": _("Tick at least one proposal."),
        "runLabel": _(
            "%(when)s · %(objective)s · %(state)s",
            when="{when}",
            objective="{objective}",
            state="{state}",
        ),
        "open": _("Open"),
        "noRuns": _("No runs yet."),
        "imported": _("%(n)s applications imported: %(ids)s", n="{n}", ids="{ids}"),
        "notImported": _("Nothing was imported:"),
        "line": _("line %(n)s", n="{n}"),
        "chooseFile": _("Choose a CSV file first."),
        "ruleLabel": _("On the plot applied for:"),
    }


def _pending() -> list[dict[str, Any]]:
    apps = deps.get_store().read("applications", where={"status": PENDING}, order_by="app_id")
    keep = ["app_id", "company", "project", "sector", "min_ha", "max_ha", "invest", "jobs"]
    rows = apps[keep].astype(object).where(apps[keep].notna(), None)
    return [{str(k): v for k, v in r.items()} for r in rows.to_dict("records")]


def _config() -> dict[str, Any]:
    styles = {s.name: dict(s.style) for s in LAYER_STYLES}
    areas = deps.get_store().read("expansion")
    return {
        "locale": str(get_locale()),
        "urls": {
            "start": url_for("api.start_allocation"),
            "runs": url_for("api.list_allocations"),
            "poll": url_for("api.get_allocation", job_id="__id__"),
            "result": url_for("api.get_allocation_result", job_id="__id__"),
            "accept": url_for("api.accept_allocation", job_id="__id__"),
            "cancel": url_for("api.cancel_allocation", job_id="__id__"),
            "import": url_for("api.import_applications"),
            "tiles": url_for("tiles.tile", layer=",".join(MAP_LAYERS), z=0, x=0, y=0).replace(
                "/0/0/0.mvt", "/{z}/{x}/{y}.mvt"
            ),
            "bounds": url_for("api.get_layer", name="zone"),
        },
        "basemap": (
            {
                "url": current_app.config["ZONEPLAN_TILES_URL"],
                "attribution": current_app.config.get("ZONEPLAN_TILES_ATTRIBUTION", ""),
            }
            if current_app.config.get("ZONEPLAN_TILES_URL")
            else None
        ),
        "layers": [
            {
                "name": n,
                "label": tr_label(LAYERS[n].label, _),
                "geometry": LAYERS[n].geometry,
                "asset": LAYERS[n].asset,
                "style": styles.get(n, {}),
            }
            for n in MAP_LAYERS
        ],
        "plotColours": PLOT_COLOURS,
        "statusStrokes": STATUS_STROKES,
        "areas": [
            {"id": str(r["exp_id"]), "name": str(r["name"] or "")}
            for r in areas.drop(columns="geometry").to_dict("records")
        ],
        "objectives": objectives(),
        "text": _strings(),
        "leaflet": leaflet_texts(_),
    }


@bp.route("/planner/allocate")
@role_required("planner")
def page():
    """The allocation page."""
    return render_template(
        "allocate.html",
        config=_config(),
        pending=_pending(),
        objectives=objectives(),
        time_limit=f"{DEFAULT_TIME_LIMIT_S:g}",
        max_time_limit=f"{MAX_TIME_LIMIT_S:g}",
    )
