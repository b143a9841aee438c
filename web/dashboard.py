"""The plan dashboard (``/dashboard``, planners and admins) and the plan targets' progress
for everyone (``/plan``, linked from the zone map): figures from planner.kpi, charts drawn
by Chart.js (web/static/dashboard.js) from the page's data-config."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, render_template, request
from flask_babel import gettext as _

from geo.i18n import N_
from geo.layers import LAYERS, PLOT_STATUSES
from geo.validate import parse_date
from planner.kpi import kpi, target_progress
from planner.visibility import kpi_view
from usecases.plan import progress_by_month
from web import deps
from web.auth import current_role, has_role, role_required
from web.labels import tr_label, tr_value
from web.maps import PLOT_COLOURS
from web.numbers import money, number, percent

bp = Blueprint("dashboard", __name__)

#: The layers the month-by-month progress reads (its cache keys).
TIMELINE_LAYERS = ("plots", "targets", "applications")

#: Each target metric's name on the page and how its values read.
METRICS: dict[str, tuple[str, Any]] = {
    "projects": (N_("Projects"), number),
    "invest": (N_("Investment"), money),
    "jobs": (N_("Jobs"), number),
    "parks": (N_("Industrial parks"), number),
    "floor_m2": (N_("Production floor"), lambda v: _("%(n)s m²", n=number(v))),
}
#: Layers whose headroom reads per asset on the page, and their unit words.
UNITS = {"kW": N_("kW"), "m3/day": N_("m³/day")}


def _report(as_of: dt.date | None) -> dict[str, Any]:
    snapshot = deps.deps().cached(
        "kpi_snapshot", lambda: {**deps.snapshot(), "targets": deps.get_store().read("targets")}
    )
    return kpi(snapshot, as_of=as_of, model=deps.servicing_model())


def timeline() -> dict[str, Any]:
    """The plan's progress month by month up to today (cached per revision and day)."""
    today = deps.deps().today()
    return deps.deps().cached(
        ("kpi_timeline", today),
        lambda: progress_by_month(deps.get_store(), today=today, plots=deps.snapshot()["plots"]),
        TIMELINE_LAYERS,
    )


def _target_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per plan target, then jobs (which the plan sets no target for)."""
    rows = []
    for t in report["targets"]:
        word, fmt = METRICS[t["metric"]]
        rows.append(
            {
                **t,
                "label": _(word),
                "actual_text": fmt(t["actual"]),
                "target_text": fmt(t["target"]),
                "progress_text": percent(t["progress"]),
                "bar": min(max(t["progress"] or 0.0, 0.0), 1.0),
            }
        )
    return rows


def _charts(report: dict[str, Any], line: dict[str, Any]) -> dict[str, Any]:
    """What dashboard.js draws: values, and every word and number already in the reader's
    language (no formatting rules in the script)."""
    series = []
    for t in line["targets"]:
        word, fmt = METRICS[t["metric"]]
        target = t["target"] or 0.0
        series.append(
            {
                "label": _(
                    "%(what)s: %(target)s by %(year)s",
                    what=_(word),
                    target=fmt(target),
                    year=t["year"],
                ),
                "percent": [round(100 * a / target, 1) if target else None for a in t["actual"]],
                "text": [fmt(a) for a in t["actual"]],
                "deadline": f"{t['year']}-12",
            }
        )
    by_status = report["area"]["by_status"]
    subs = [h for h in report["headroom"] if h["layer"] == "substations"]
    return {
        "timeline": {
            "months": line["months"],
            "series": series,
            "filed": line["applications"]["filed"],
            "accepted": line["applications"]["accepted"],
        },
        "area": {
            "labels": [tr_value(s, _) for s in PLOT_STATUSES],
            "ha": [by_status[s]["area_ha"] for s in PLOT_STATUSES],
            "text": [
                _(
                    "%(ha)s ha, %(n)s plots",
                    ha=number(by_status[s]["area_ha"], 1),
                    n=by_status[s]["plots"],
                )
                for s in PLOT_STATUSES
            ],
            "colours": [PLOT_COLOURS[s] for s in PLOT_STATUSES],
        },
        "headroom": {
            "labels": [h["asset_id"] for h in subs],
            "kw": [h["headroom"] or 0.0 for h in subs],
            "notes": [tr_value(h["status"], _) if h["reason"] else "" for h in subs],
            "text": [_("%(n)s kW", n=number(h["headroom"])) for h in subs],
        },
        "ready": {
            "labels": [_ready_label(r) for r in report["ready_by_date"]],
            "plots": [r["plots"] for r in report["ready_by_date"]],
            "text": [
                _("%(n)s plots, %(ha)s ha", n=r["plots"], ha=number(r["area_ha"], 1))
                for r in report["ready_by_date"]
            ],
        },
        "labels": {
            "percent_axis": _("per cent of the target"),
            "apps_axis": _("applications"),
            "filed": _("applications filed"),
            "accepted": _("applications accepted"),
            "deadline": _("deadline"),
            "ha": _("ha"),
            "kw": _("kW"),
            "plots": _("plots"),
        },
    }


def _ready_label(entry: dict[str, Any]) -> str:
    if entry["ready"] == "now":
        return _("now")
    if entry["ready"] == "unknown":
        return _("date unknown")
    return _("%(date)s (overdue)", date=entry["ready"]) if entry["overdue"] else entry["ready"]


@bp.route("/dashboard")
@role_required("planner", "admin")
def dashboard():
    """Progress against the plan: targets, figures and charts, printable on one page."""
    error, as_of = None, None
    if request.args.get("as_of"):
        try:
            as_of = parse_date(request.args["as_of"])
        except ValueError as err:
            error = _("Date: %(problem)s", problem=str(err))
    report = kpi_view(_report(as_of), current_role())
    inv = report["investment"]
    return render_template(
        "dashboard.html",
        report=report,
        error=error,
        as_of=as_of,
        targets=_target_rows(report),
        jobs=number(inv["jobs"]),
        invest=money(inv["invest"]),
        infra=[
            {**c, "label": tr_label(LAYERS[c["layer"]].label, _)} for c in report["infrastructure"]
        ],
        units={k: _(v) for k, v in UNITS.items()},
        number=number,
        money=money,
        chart_config=_charts(report, timeline()),
    )


@bp.route("/plan")
def plan():
    """Progress against the plan targets as everyone may read it (zone totals only)."""

    def build() -> list[dict[str, Any]]:
        store = deps.get_store()
        return target_progress(store.read("plots"), store.read("targets"))

    targets = deps.deps().cached("plan_targets", build, ("plots", "targets"))
    report = kpi_view({"as_of": None, "today": None, "targets": targets}, current_role())
    return render_template("plan.html", targets=_target_rows(report), dashboard=has_role("planner"))
