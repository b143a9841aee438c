"""Investors' pages: the plot catalogue (map + list), a plot's page with the Apply form,
applications and their lifecycle, GIS downloads and planners' uploads.

A thin adapter: data for the catalogue comes from /api/plots (web/static/catalogue.js),
decisions from planner.catalogue and planner.applications, files from geo.io through
the helpers of web.api.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from werkzeug.datastructures import MultiDict

from geo.layers import LAYERS, SECTORS, parse_sectors
from geo.store import Conflict, NotFound
from geo.validate import Problem as SchemaProblem
from geo.validate import ValidationError
from planner import applications as apps
from planner import catalogue as cat
from planner.servicing import UTILITY_WORDS, readiness_basis
from planner.visibility import Forbidden, plot_view
from usecases import applications as usecase
from usecases import uploads
from web import api, deps, svgmap
from web.auth import current_role, current_username, has_role, role_required, signed_in_username
from web.i18n import leaflet_texts, measure_labels
from web.labels import tr_label, tr_value
from web.maps import PLOT_COLOURS, search_labels

bp = Blueprint("catalogue", __name__)

DOWNLOAD_FORMATS = (("shp.zip", "Shapefile (zip)"), ("gpkg", "GeoPackage"), ("geojson", "GeoJSON"))
CONTEXT_LAYERS = (
    "zone",
    "roads",
    "rail_lines",
    "rail_stations",
    "substations",
    "power_lines",
    "water_mains",
)
UPLOAD_SESSION_KEY = "zp_upload"


def _tv(code: Any) -> str:
    return tr_value(code, _)


@bp.app_context_processor
def _helpers() -> dict[str, Any]:
    return {"tv": _tv, "SECTORS": SECTORS}


def _page_config() -> dict[str, Any]:
    """What catalogue.js needs, passed as data attributes (no inline script)."""
    config = current_app.config
    return {
        "api": url_for("api.list_plots"),
        "plot_url": url_for("catalogue.plot", plot_id="__ID__"),
        "layers_url": url_for("api.get_layer", name="__NAME__"),
        "vector_tiles": url_for("tiles.tile", layer="__layer__", z=0, x=0, y=0).replace(
            "/0/0/0.mvt", "/{z}/{x}/{y}.mvt"
        ),
        "export_url": url_for("api.export", layer="plots", format="gpkg").replace(
            "plots.gpkg", "plots.__FMT__"
        ),
        "search": url_for("api.search_plots"),
        "tiles": config.get("ZONEPLAN_TILES_URL") or "",
        "attribution": config.get("ZONEPLAN_TILES_ATTRIBUTION") or "",
        "colours": PLOT_COLOURS,
        "leaflet": leaflet_texts(_),
        "labels": {
            "matched": _("%(n)s plots match", n="{n}"),
            "shown": _("%(n)s shown", n="{n}"),
            "none": _("No plot matches these filters."),
            "loading": _("Loading…"),
            "error": _("Could not load the plots:"),
            "yes": _("yes"),
            "no": _("no"),
            "any_sector": _("any sector"),
            "now": _("now"),
            "unknown": _("unknown"),
            "ha": _("ha"),
            "kw": _("kW"),
            "m3d": _("m³/day"),
            "waits_for": _("waits for %(what)s", what="{what}"),
            "utilities": {u: _(word) for u, word in UTILITY_WORDS.items()},
            "sectors": {s: _tv(s) for s in SECTORS},
            "statuses": {s: _tv(s) for s in PLOT_COLOURS},
            "search": search_labels(_),
            "measure": measure_labels(_),
        },
    }


def _filters_or_error(args: MultiDict) -> tuple[dict[str, str], str | None]:
    """The page's filters as given (for the form) and an error message when they are bad.

    ``plot`` (the selected plot, for shared links) is the page's own, not a filter; the
    status boxes send ``status`` once per status ticked."""
    values = {k: v for k, v in args.to_dict(flat=True).items() if v != "" and k != "plot"}
    statuses = [s for s in args.getlist("status") if s]
    if len(statuses) > 1:
        values["status"] = ",".join(statuses)
    try:
        cat.parse_filters(values)
    except cat.QueryError as err:
        return values, str(err)
    return values, None


# --------------------------------------------------------------------------- catalogue
@bp.route("/plots")
def plots():
    """Plots (available by default, any status the reader may see): filters, a map and a
    sortable list kept in sync (data: /api/plots)."""
    values, error = _filters_or_error(request.args)
    view = plot_view(current_role())
    return render_template(
        "plots.html",
        values=values,
        error=error,
        statuses=view.statuses,
        checked=_checked_statuses(values.get("status")),
        page_config=_page_config(),
        formats=DOWNLOAD_FORMATS,
    )


def _checked_statuses(text: str | None) -> list[str]:
    """The statuses a ``status`` parameter asks for (the catalogue's default: available)."""
    asked = [s.strip() for s in (text or "").split(",") if s.strip()]
    return asked or [cat.PUBLIC_PLOT_STATUS]


def _servicing_record(plot_id: str, as_of: dt.date | None = None) -> dict[str, Any] | None:
    return deps.servicing_model().answer([plot_id], as_of=as_of)[0]


def _plot_context(plot_id: str) -> dict[str, Any]:
    store = deps.get_store()
    try:
        rows = cat.get_plot(store, plot_id, role=current_role(), servicing=deps.servicing_model())
    except NotFound:
        abort(404)
    props = cat.plot_properties(
        rows.drop(columns="geometry").iloc[0].to_dict(), plot_view(current_role())
    )
    raw = rows.iloc[0]
    record = _servicing_record(plot_id)
    allowed = parse_sectors(raw["sectors"])
    area = float(props["area_ha"] or 0)
    defaults = {
        "min_ha": f"{math.floor(area * 10) / 10:g}",
        "max_ha": f"{math.ceil(area * 10) / 10:g}",
        "sector": "" if allowed is None or len(allowed) != 1 else next(iter(allowed)),
    }
    return {
        "plot": props,
        "record": record,
        "explain": deps.explain(record, translate=_) if record else [],
        "ready_basis": readiness_basis(record, _) if record else "",
        "waits_for": ", ".join(_(UTILITY_WORDS[u]) for u in record["waits_for"]) if record else "",
        "sector_choices": [s for s in SECTORS if allowed is None or s in allowed],
        "defaults": defaults,
        "page_config": _page_config(),
        "can_apply": has_role("investor") and props["status"] == cat.PUBLIC_PLOT_STATUS,
    }


@bp.route("/plots/<plot_id>")
def plot(plot_id: str):
    """One plot: small map, facts, the servicing answer in words, and the Apply form."""
    ctx = _plot_context(plot_id)
    return render_template("plots_detail.html", form=ctx["defaults"], errors={}, **ctx)


@bp.route("/plots/<plot_id>/sheet")
def plot_sheet(plot_id: str):
    """One plot on one printable A4 page: a small map, its facts and the servicing answer."""
    ctx = _plot_context(plot_id)  # 404 for what the reader may not see
    row = deps.get_store().read("plots", where={"plot_id": plot_id})
    view = plot_view(current_role(), current_username())
    svg = svgmap.plot_map(deps.get_store(), row.geometry.iloc[0], plot_id, view)
    return render_template(
        "plots_sheet.html", svg=svg, label_size=svgmap.font_size(svg), today=dt.date.today(), **ctx
    )


def _form_data(form: MultiDict) -> dict[str, Any]:
    """Application fields from a posted form: blanks dropped, the checkbox as a bool."""
    data: dict[str, Any] = {}
    for name in apps.INVESTOR_FIELDS:
        value = form.get(name, "").strip()
        if name == "rail_need":
            data[name] = value in ("on", "true", "1", "yes")
        elif value != "":
            data[name] = value
    return data


def _problems_by_field(err: ValidationError) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in err.problems:
        out.setdefault(p.field or "_", p.reason)
    return out


@bp.route("/plots/<plot_id>/apply", methods=["POST"])
@role_required("investor")
def apply(plot_id: str):
    """An investor applies for this plot: rules the plot breaks today are shown first as
    warnings, and the application is filed when the investor submits it anyway."""
    data = {**_form_data(request.form), "plot_id": plot_id}
    store, user, role = deps.get_store(), signed_in_username(), current_role()
    try:
        if not request.form.get("confirm"):
            warnings = usecase.check(store, data, user=user, role=role, servicing=api.tx_servicing)
            if warnings:
                return render_template(
                    "plots_detail.html",
                    form=request.form,
                    errors={},
                    warnings=api.rules_json(warnings),
                    **_plot_context(plot_id),
                )
        filed = usecase.apply(store, data, user=user, role=role, servicing=api.tx_servicing)
    except ValidationError as err:
        ctx = _plot_context(plot_id)
        return render_template(
            "plots_detail.html", form=request.form, errors=_problems_by_field(err), **ctx
        ), 422
    except NotFound:
        abort(404)
    except Conflict as err:
        flash(str(err), "danger")
        return redirect(url_for("catalogue.plots"))
    flash(
        _(
            "Application %(id)s submitted for plot %(plot)s.",
            id=filed.application["app_id"],
            plot=plot_id,
        ),
        "success",
    )
    for warning in api.rules_json(filed.warnings):
        flash(warning["message"], "warning")
    return redirect(url_for("catalogue.applications"))


# --------------------------------------------------------------------------- applications
def _candidates(app: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Available plots that meet an application's needs (the planner's choices)."""
    store = deps.get_store()
    try:
        filters = apps.matching_filters(app, limit=50)
        page = cat.search(store, filters, role="planner", servicing=deps.servicing_model())
        rows = page.records()
    except (cat.QueryError, ValueError):
        rows = []
    if app.get("plot_id") and app["plot_id"] not in [r["plot_id"] for r in rows]:
        try:
            rows.insert(
                0, cat.plot_properties(store.get("plots", app["plot_id"]), plot_view("planner"))
            )
        except NotFound:
            pass
    return rows


def _applications_page(
    new_form: Mapping[str, Any] | None = None,
    errors: Mapping[str, str] | None = None,
    status: int = 200,
):
    store = deps.get_store()
    staff = has_role("planner")
    records = apps.list_applications(store, user=signed_in_username(), role=current_role())
    candidates = {
        a["app_id"]: _candidates(a) for a in records if staff and a["status"] == "submitted"
    }
    return render_template(
        "applications_board.html",
        applications=records,
        staff=staff,
        candidates=candidates,
        form=new_form or {"min_ha": "", "max_ha": ""},
        errors=errors or {},
        investor=has_role("investor"),
    ), status


@bp.route("/applications", methods=["GET", "POST"])
@role_required("investor", "planner")
def applications():
    """Applications and their state; investors also apply for any plot matching their needs."""
    if request.method == "GET":
        return _applications_page()
    if not has_role("investor"):
        abort(403)
    try:
        filed = usecase.apply(
            deps.get_store(),
            _form_data(request.form),
            user=signed_in_username(),
            role=current_role(),
            servicing=api.tx_servicing,
        )
    except ValidationError as err:
        return _applications_page(request.form, _problems_by_field(err), 422)
    flash(_("Application %(id)s submitted.", id=filed.application["app_id"]), "success")
    return redirect(url_for("catalogue.applications"))


def _version(form: Mapping[str, str]) -> int | None:
    text = (form.get("version") or "").strip()
    return int(text) if text.isdigit() else None


def _act(app_id: str, action: str) -> Any:
    store, user, role = deps.get_store(), signed_in_username(), current_role()
    version = _version(request.form)
    if action == "withdraw":
        if not has_role("investor"):  # staff withdraw for an investor only from the CLI
            raise Forbidden("only investors withdraw their applications")
        return usecase.withdraw(store, app_id, user=user, role=role, version=version)
    if action == "accept":
        return usecase.accept(
            store,
            app_id,
            request.form.get("plot_id") or None,
            user=user,
            role=role,
            version=version,
            servicing=api.tx_servicing,
        )
    return usecase.reject(
        store, app_id, request.form.get("reason", ""), user=user, role=role, version=version
    )


@bp.route("/applications/<app_id>/<any(withdraw, accept, reject):action>", methods=["POST"])
@role_required("investor", "planner")
def application_action(app_id: str, action: str):
    """Withdraw (the investor), accept for a plot or reject with a reason (planners)."""
    try:
        app = _act(app_id, action)
    except NotFound:
        abort(404)
    except Forbidden:
        abort(403)
    except (ValidationError, Conflict) as err:
        if isinstance(err, usecase.Refused):
            message = err.message(_)
        elif isinstance(err, ValidationError):
            message = "; ".join(p.reason for p in err.problems)
        else:
            message = str(err)
        flash(message, "danger")
        return redirect(url_for("catalogue.applications"))
    released = action != "accept" and app.get("assigned")
    done = {
        "withdraw": _("Application %(id)s withdrawn."),
        "accept": _("Application %(id)s accepted: plot %(plot)s is reserved."),
        "reject": _("Application %(id)s rejected."),
    }[action]
    if released:
        done += " " + _("Plot %(plot)s is released.")
    flash(done % {"id": app["app_id"], "plot": app.get("assigned") or ""}, "success")
    return redirect(url_for("catalogue.applications"))


# --------------------------------------------------------------------------- downloads
@bp.route("/downloads")
def downloads():
    """Every layer the reader may download, in each format."""
    store = deps.get_store()
    layers = [
        dict(item, label=tr_label(item["label"], _))
        for item in cat.layer_summary(store, current_role())
        if item["name"] in api.EXPORTABLE
    ]
    return render_template("plots_downloads.html", layers=layers, formats=DOWNLOAD_FORMATS)


# --------------------------------------------------------------------------- uploads
def _page_options() -> dict[str, str]:
    """How the import options are called on the upload page, for messages."""
    return {
        "crs": _('the "CRS, if the file has none" field'),
        "src_layer": _('the "Layer or file inside" field'),
        "encoding": _('the "Text encoding" field'),
    }


def _upload_page(**ctx: Any):
    ctx.setdefault("layers", [(n, tr_label(LAYERS[n].label, _)) for n in api.IMPORTABLE])
    ctx.setdefault("limit_mb", max(1, api.upload_limit() // (1024 * 1024)))
    ctx.setdefault("values", {})
    status = ctx.pop("status", 200)
    return render_template("upload.html", **ctx), status


def _forget_staged() -> None:
    token = session.pop(UPLOAD_SESSION_KEY, None)
    if token:
        uploads.drop(deps.get_store(), token, user=signed_in_username())


@bp.route("/upload", methods=["GET", "POST"])
@role_required("planner")
def upload():
    """Planners upload a file into a layer: checked first, written only after confirming."""
    if request.method == "GET":
        return _upload_page()
    api.check_upload_size()
    values = {
        k: request.form.get(k, "") for k in ("layer", "replace", "crs", "src_layer", "encoding")
    }
    _forget_staged()
    try:
        data, options = api.upload_request(request.files.get("file"), request.form)
        plan, token = uploads.stage(
            deps.get_store(), data, options, user=signed_in_username(), names=_page_options()
        )
    except cat.QueryError as err:
        return _upload_page(values=values, error=str(err), status=400)
    except ValidationError as err:
        return _upload_page(values=values, problems=err.problems, status=422)
    if token is None:
        return _upload_page(values=values, plan=plan, problems=plan.problems, status=422)
    session[UPLOAD_SESSION_KEY] = token
    return _upload_page(values=values, plan=plan)


def _confirmed_removals() -> int | None:
    text = request.form.get("confirm_removals", "")
    return int(text) if text.isdigit() else None


@bp.route("/upload/confirm", methods=["POST"])
@role_required("planner")
def upload_confirm():
    """Write the checked upload kept for this session (checked again, one transaction);
    a replace that removes features needs its removals confirmed as well."""
    token = session.get(UPLOAD_SESSION_KEY)
    if not token:
        flash(_("Nothing to confirm: upload the file again."), "danger")
        return redirect(url_for("catalogue.upload"))
    store = deps.get_store()
    try:
        plan, written = uploads.confirm(
            store,
            token,
            user=signed_in_username(),
            confirm_removals=_confirmed_removals(),
            names=_page_options(),
        )
    except NotFound as err:
        session.pop(UPLOAD_SESSION_KEY, None)
        flash(str(err), "danger")
        return redirect(url_for("catalogue.upload"))
    except uploads.ConfirmationNeeded as err:
        return _upload_page(
            plan=err.plan,
            status=409,
            error=_(
                "Tick the box confirming that %(n)s feature(s) will be removed, or cancel.",
                n=err.plan.removals,
            ),
        )
    except (ValidationError, Conflict) as err:
        _forget_staged()
        problems = getattr(err, "problems", None) or [SchemaProblem(None, None, None, str(err))]
        return _upload_page(problems=problems, status=409)
    session.pop(UPLOAD_SESSION_KEY, None)
    flash(
        _(
            "%(layer)s: %(added)s added, %(updated)s updated, %(removed)s removed.",
            layer=tr_label(LAYERS[plan.layer].label, _),
            added=plan.adds,
            updated=len(plan.updates),
            removed=plan.removals,
        ),
        "success",
    )
    return redirect(url_for("catalogue.upload"))


@bp.route("/upload/cancel", methods=["POST"])
@role_required("planner")
def upload_cancel():
    """Forget the checked upload."""
    _forget_staged()
    flash(_("Upload cancelled; nothing was written."), "info")
    return redirect(url_for("catalogue.upload"))
