"""Planner pages: the drawing workspace, the audit history with filters, and one feature's
attributes, history and edit forms. A thin adapter over planner.parcels and the store; the
workspace's map talks to the JSON API (/api/layers, /api/check, /api/plots, /api/assets)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, cast

import pandas as pd
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _

from geo.i18n import N_
from geo.layers import (
    ASSET_LAYERS,
    ASSET_STATUSES,
    FEATURE_LAYERS,
    LAYERS,
    NOTE_MAX_LENGTH,
    PLOT_STATUSES,
    SECTORS,
    get_layer,
)
from geo.store import Conflict, Invalid, NotFound, StoreError
from geo.validate import ValidationError, parse_date
from planner import coordinates, parcels
from web import api_edit, deps
from web.auth import current_username, role_required
from web.i18n import geoman_texts, leaflet_texts
from web.labels import FEATURE_NOUNS, format_value, tr_label, tr_value
from web.maps import LAYER_STYLES, PLOT_COLOURS, ROAD_WEIGHTS, STATUS_STROKES, legend

bp = Blueprint("planner", __name__)

HISTORY_PAGE = 100
#: From this zoom on the workspace loads the plots in view as editable outlines.
PLOT_ZOOM = 14
#: The most features /api/layers serves in one page (planner.catalogue.LayerQuery).
LAYER_PAGE = 10_000
ACTIONS = ("insert", "update", "delete")


ACTION_LABELS = {"insert": N_("added"), "update": N_("changed"), "delete": N_("deleted")}
#: Map layers of the workspace, drawn bottom to top, and whether they start visible.
WORKSPACE_LAYERS: tuple[tuple[str, bool], ...] = (
    ("zone", True),
    ("expansion", True),
    ("prot_zones", True),
    ("plots", True),
    ("roads", True),
    ("water_mains", False),
    ("storm_sewers", True),
    ("gas_mains", False),
    ("power_lines", True),
    ("rail_lines", True),
    ("gates", True),
    ("rail_stations", True),
    ("substations", True),
)


def _static(path: str) -> str:
    return url_for("static", filename=path)


# --------------------------------------------------------------------------- the workspace
def _strings() -> dict[str, str]:
    """Every sentence planner.js shows, in the reader's language."""
    return {
        "drawn": _("Drawn parcel"),
        "cadastre": _("Cadastral number"),
        "expansion": _("Expansion area"),
        "checking": _("Checking the outline…"),
        "valid": _("The parcel can be stored."),
        "invalid": _("The parcel cannot be stored:"),
        "warnings": _("Worth a look:"),
        "area": _("Area"),
        "ha": _("ha"),
        "servicing": _("Servicing of this outline"),
        "save": _("Save as candidate plot"),
        "discard": _("Discard drawing"),
        "saved": _("Stored as candidate plot %(id)s.", id="{id}"),
        "not_saved": _("Nothing was stored:"),
        "editOutline": _("Edit outline"),
        "saveOutline": _("Save outline"),
        "cancel": _("Cancel"),
        "delete": _("Delete candidate"),
        "confirmDelete": _("Delete candidate plot %(id)s?", id="{id}"),
        "deleted": _("Candidate plot %(id)s deleted.", id="{id}"),
        "moveTo": _("Move to"),
        "moved": _("Plot %(id)s is now %(status)s.", id="{id}", status="{status}"),
        "outlineSaved": _("Outline of %(id)s saved: %(area)s ha.", id="{id}", area="{area}"),
        "noMoves": _("No lifecycle move is possible from here."),
        "stale": _("Someone else changed this feature meanwhile; your change was not saved."),
        "staleDetail": _(
            "Its current version is %(now)s; you were working on version "
            "%(mine)s. Reload it, then apply your change again.",
            now="{now}",
            mine="{mine}",
        ),
        "reload": _("Reload it"),
        "reloaded": _("Reloaded the current version."),
        "failed": _("The server refused the change:"),
        "network": _("The server could not be reached; nothing was saved."),
        "version": _("Version"),
        "status": _("Status"),
        "since": _("Status since"),
        "due": _("Due"),
        "note": _("Note"),
        "changedOn": _("Date of the status change"),
        "saveAsset": _("Save status"),
        "publishGaps": _("Plot %(id)s lacks what investors need within reach:", id="{id}"),
        "publishAnyway": _("Publish it anyway"),
        "assetSaved": _("%(id)s saved: %(status)s.", id="{id}", status="{status}"),
        "details": _("Attributes and history"),
        "loading": _("Loading…"),
        "servicingPlot": _("What the plot can connect to"),
        "noServicing": _("Servicing answers are not available yet."),
        "editing": _(
            "Drag the white squares to move corners; drag a midpoint to add one. "
            "Then save the outline."
        ),
        "loadFailed": _("A map layer could not be loaded:"),
        "close": _("Close"),
        "typeCoords": _("Type coordinates"),
        "coordsNewTitle": _("A parcel from coordinates"),
        "coordsEditTitle": _("Outline of %(id)s from coordinates", id="{id}"),
        "attributes": _("Attributes"),
        "saveAttributes": _("Save attributes"),
        "attributesSaved": _("Attributes of %(id)s saved.", id="{id}"),
        "nothingChanged": _("Nothing was changed."),
        "anySector": _("any sector"),
        "yes": _("yes"),
        "no": _("no"),
        "noteHint": _("Notes are stored as typed, in the language they were written in."),
        "noteAsEntered": _("Note as entered (not translated)."),
        "zoomToDraw": _("Zoom in to draw a parcel"),
        "zoomToDrawWhy": _(
            "Its corners snap to the plots' outlines, and the map shows those only when zoomed in."
        ),
        "zoomIn": _("Zoom in"),
    }


def _plot_fields() -> list[dict[str, Any]]:
    """The plot attributes the workspace edits, described from the schema (geo/layers.py)."""
    plots = LAYERS["plots"]
    out = []
    for name in api_edit.EDITABLE_PLOT_FIELDS:
        fld = plots.field(name)
        kind = {"str": "text", "int": "int", "float": "number", "bool": "bool"}[fld.type]
        if name == "sectors":
            kind = "sectors"
        elif fld.choices:
            kind = "choice"
        out.append(
            {
                "name": name,
                "label": tr_label(fld.label, _),
                "kind": kind,
                "choices": [[c, tr_value(c, _)] for c in (fld.choices or SECTORS)]
                if kind in ("choice", "sectors")
                else None,
                "min": fld.minimum,
                "max": fld.maximum,
                "maxLength": fld.max_length if kind == "text" else None,
            }
        )
    return out


def _workspace_config() -> dict[str, Any]:
    styles = {s.name: {"style": dict(s.style), "radius": s.radius} for s in LAYER_STYLES}
    return {
        "locale": str(get_locale()),
        "urls": {
            "layer": url_for("api.get_layer", name="__layer__"),
            "check": url_for("api.check_drawn_parcel"),
            "plots": url_for("api.create_plot"),
            "plot": url_for("api.patch_plot", plot_id="__id__"),
            "servicing": url_for("api.servicing", plot_id="__id__"),
            "asset": url_for("api.patch_asset", layer="__layer__", asset_id="__id__"),
            "feature": url_for("planner.feature", layer="__layer__", key="__id__"),
            "history": url_for("planner.history"),
            "catalogue": url_for("api.list_plots"),
            "coords": url_for("api.read_corners"),
            "coordsText": url_for("api.write_corners"),
            "pick": url_for("tiles.pick"),
            "tiles": url_for("tiles.tile", layer="plots", z=0, x=0, y=0).replace(
                "/0/0/0.mvt", "/{z}/{x}/{y}.mvt"
            ),
        },
        "plotZoom": PLOT_ZOOM,
        "pageSize": LAYER_PAGE,
        "tiles": (
            {
                "url": current_app.config["ZONEPLAN_TILES_URL"],
                "attribution": current_app.config.get("ZONEPLAN_TILES_ATTRIBUTION", ""),
            }
            if current_app.config.get("ZONEPLAN_TILES_URL")
            else None
        ),
        "layers": [
            {
                "name": name,
                "label": tr_label(LAYERS[name].label, _),
                "show": show,
                "noun": _(FEATURE_NOUNS[name]),
                "key": LAYERS[name].key,
                "asset": LAYERS[name].asset,
                "geometry": LAYERS[name].geometry,
                **styles.get(name, {"style": {}}),
            }
            for name, show in WORKSPACE_LAYERS
        ],
        "plotColours": PLOT_COLOURS,
        "statusStrokes": STATUS_STROKES,
        "roadWeights": ROAD_WEIGHTS,
        "transitions": {s: list(parcels.allowed_transitions(s)) for s in PLOT_STATUSES},
        "reshape": list(parcels.RESHAPE_STATUSES),
        "deletable": list(parcels.DELETABLE_STATUSES),
        "plotStatuses": {s: tr_value(s, _) for s in PLOT_STATUSES},
        "plotStatusOrder": list(PLOT_STATUSES),
        "assetStatuses": {s: tr_value(s, _) for s in ASSET_STATUSES},
        "assetStatusOrder": list(ASSET_STATUSES),
        "minArea": parcels.MIN_AREA_HA,
        "plotFields": _plot_fields(),
        "noteMaxLength": NOTE_MAX_LENGTH,
        "leaflet": leaflet_texts(_),
        "geoman": geoman_texts(_),
        "text": _strings(),
    }


def coordinate_systems() -> list[tuple[str, str]]:
    """The systems corners may be typed in, labelled for the form."""
    labels = {
        "EPSG:4326": _("WGS84: longitude, latitude (degrees)"),
        "EPSG:32643": _("UTM zone 43N (EPSG:32643): easting, northing (metres)"),
    }
    return [(code, labels[code]) for code in coordinates.SYSTEMS]


@bp.route("/planner")
@role_required("planner")
def workspace():
    """The planner's map: draw, check and store parcels; reshape, promote, delete plots; set
    asset statuses."""
    return render_template(
        "planner.html",
        config=_workspace_config(),
        legend=legend(_),
        coordinate_systems=coordinate_systems(),
    )


# --------------------------------------------------------------------------- the history
def _date(name: str) -> dt.date | None:
    text = (request.args.get(name) or "").strip()
    if not text:
        return None
    try:
        return parse_date(text)
    except ValueError as err:
        flash(str(err), "danger")
        return None


def audit_rows(
    store,
    *,
    user: str | None = None,
    layer: str | None = None,
    feature: str | None = None,
    action: str | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
) -> pd.DataFrame:
    """Audit records matching the filters, newest first (``until`` inclusive)."""
    where = {
        k: v
        for k, v in (("username", user), ("layer", layer), ("feat_id", feature), ("action", action))
        if v
    }
    rows = store.read("audit", where=where or None, order_by="-audit_id")
    if since is not None:
        rows = rows[rows["at"] >= since.isoformat()]
    if until is not None:
        rows = rows[rows["at"] < (until + dt.timedelta(days=1)).isoformat()]
    return rows


def _value_text(layer: str, name: str, value: Any) -> str:
    if value is None:
        return "—"
    lyr = LAYERS.get(layer)
    if lyr is None or not lyr.has(name):
        return str(value)
    try:
        return format_value(layer, name, value, _)
    except (TypeError, ValueError):
        return str(value)


def describe_changes(layer: str, action: str, changes: str | None) -> list[dict[str, str]]:
    """An audit record's ``{field: [old, new]}`` as rows of label, before, after (outlines
    summarised, not printed as WKT)."""
    try:
        data = json.loads(changes or "{}")
    except ValueError:
        return [{"field": "", "old": "", "new": str(changes)}]
    lyr = LAYERS.get(layer)
    out = []
    for name, pair in data.items():
        old, new = (pair + [None, None])[:2] if isinstance(pair, list) else (None, pair)
        label = tr_label(lyr.field(name).label, _) if lyr is not None and lyr.has(name) else name
        if name == "geometry":
            label = _("Outline")
            old = _("old outline") if old else "—"
            new = _("new outline") if new else "—"
            out.append({"field": label, "old": old, "new": new})
            continue
        out.append(
            {
                "field": label,
                "old": _value_text(layer, name, old),
                "new": _value_text(layer, name, new),
            }
        )
    return out


def _history_items(rows: pd.DataFrame) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for r in cast(list[dict[str, Any]], rows.to_dict("records")):
        items.append(
            {
                **r,
                "at_text": str(r["at"]).replace("T", " "),
                "layer_label": tr_label(LAYERS[r["layer"]].label, _)
                if r["layer"] in LAYERS
                else r["layer"],
                "linkable": r["layer"] in FEATURE_LAYERS and r["feat_id"] != "*",
                "changes_rows": describe_changes(r["layer"], r["action"], r["changes"]),
            }
        )
    return items


@bp.context_processor
def _labels() -> dict[str, Any]:
    return {"action_labels": {code: _(label) for code, label in ACTION_LABELS.items()}}


@bp.route("/planner/history")
@role_required("planner")
def history():
    """Every audited change, newest first, filtered by user, layer, feature, action, dates."""
    store = deps.get_store()
    args = request.args
    filters: dict[str, Any] = {
        "user": (args.get("user") or "").strip() or None,
        "layer": (args.get("layer") or "").strip() or None,
        "feature": (args.get("feature") or "").strip() or None,
        "action": (args.get("action") or "").strip() or None,
        "since": _date("from"),
        "until": _date("to"),
    }
    if filters["action"] and filters["action"] not in ACTIONS:
        flash(_("Unknown action %(action)s.", action=filters["action"]), "danger")
        filters["action"] = None
    try:
        page = max(1, int(args.get("page", 1)))
    except ValueError:
        page = 1
    rows = audit_rows(store, **filters)
    everything = store.read("audit")
    total = len(rows)
    shown = rows.iloc[(page - 1) * HISTORY_PAGE : page * HISTORY_PAGE]
    query = {k: v for k, v in args.items() if k != "page" and v}
    return render_template(
        "planner_history.html",
        items=_history_items(shown),
        total=total,
        page=page,
        pages=max(1, -(-total // HISTORY_PAGE)),
        query=query,
        args=args,
        users=sorted(everything["username"].dropna().unique()),
        layers=[
            (n, tr_label(LAYERS[n].label, _) if n in LAYERS else n)
            for n in sorted(everything["layer"].dropna().unique())
        ],
        actions=ACTIONS,
    )


# --------------------------------------------------------------------------- one feature
def _attributes(layer: str, row: dict[str, Any]) -> list[dict[str, str]]:
    lyr = get_layer(layer)
    out = []
    for fld in lyr.fields:
        value = row.get(fld.name)
        if fld.name == "version" or value is None or (isinstance(value, str) and not value):
            continue
        out.append(
            {
                "name": fld.name,
                "label": tr_label(fld.label, _),
                "value": _value_text(layer, fld.name, value),
            }
        )
    return out


def _servicing_lines(plot_id: str) -> list[str]:
    try:
        record = deps.servicing_record(plot_id)
    except Exception:  # noqa: BLE001 - the page must not depend on the planner's health
        current_app.logger.exception("servicing answers failed for %s", plot_id)
        return []
    return deps.explain(record, translate=_) if record else []


def _publish_gaps(plot_id: str) -> list[str]:
    """The servicing answer of the road and water a plot lacks (publishing it needs a tick)."""
    record = deps.servicing_record(plot_id)
    gaps = parcels.publishing_gaps(record) if record else []
    return parcels.PublishUnconfirmed(plot_id, gaps).lines(_) if gaps else []


def _feature_or_none(layer: str, key: str) -> dict[str, Any] | None:
    """The feature, or None when it was deleted (its history remains); 404 when it never
    existed or the layer is not a map layer."""
    if layer not in FEATURE_LAYERS:
        abort(404, _("There is no map layer %(layer)s.", layer=layer))
    store = deps.get_store()
    try:
        return store.get(layer, key)
    except NotFound:
        if store.count("audit", where={"layer": layer, "feat_id": key}):
            return None
        abort(
            404,
            _(
                "%(layer)s %(key)s does not exist.",
                layer=_(FEATURE_NOUNS.get(layer, layer)),
                key=key,
            ),
        )


def _apply_form(layer: str, key: str) -> None:
    """Apply a posted edit form (asset status, plot lifecycle move); flash the outcome."""
    form = request.form
    try:
        version = int(form.get("version", ""))
    except ValueError:
        flash(_("The form lacks the version you saw; reload the page."), "danger")
        return
    store, user = deps.get_store(), current_username() or "unknown"
    try:
        if layer in ASSET_LAYERS:
            changes: dict[str, Any] = {}
            for name in ("status", "since", "due", "note"):
                if name in form:
                    value = form.get(name, "").strip()
                    changes[name] = value or None
            for name in ("status", "since"):  # blank: keep (since: today on a new status)
                if changes.get(name) is None:
                    changes.pop(name, None)
            parcels.update_asset(store, layer, key, changes, version=version, user=user)
            flash(_("%(id)s saved.", id=key), "success")
        elif layer == "plots" and form.get("status"):
            parcels.update_plot(
                store,
                key,
                {"status": form["status"]},
                version=version,
                user=user,
                translate=_,
                servicing=deps.servicing_model(),
                confirm=bool(form.get("confirm")),
            )
            flash(
                _("Plot %(id)s is now %(status)s.", id=key, status=tr_value(form["status"], _)),
                "success",
            )
        else:
            flash(_("Nothing to change."), "info")
    except parcels.PublishUnconfirmed as err:
        flash(err.message(_), "danger")
    except parcels.TransitionError as err:
        flash(str(err), "danger")
    except Conflict as err:
        flash(
            _("Someone else changed this feature meanwhile; your change was not saved.")
            + f" ({err})",
            "danger",
        )
    except (Invalid, ValidationError) as err:
        flash(
            "; ".join(f"{p.field}: {p.reason}" if p.field else p.reason for p in err.problems),
            "danger",
        )
    except StoreError as err:
        flash(str(err), "danger")


@bp.route("/planner/features/<layer>/<key>", methods=["GET", "POST"])
@role_required("planner")
def feature(layer: str, key: str):
    """A feature's attributes, its servicing (plots), its edit form and its history; for a
    deleted feature, its history."""
    row = _feature_or_none(layer, key)
    if request.method == "POST":
        if row is not None:
            _apply_form(layer, key)
        return redirect(url_for("planner.feature", layer=layer, key=key))
    store = deps.get_store()
    noun = _(FEATURE_NOUNS.get(layer, layer))
    row = row or {}
    return render_template(
        "planner_feature.html",
        layer=layer,
        key=key,
        row=row,
        gone=not row,
        noun=noun,
        title=row.get("name") or f"{noun} {key}",
        attributes=_attributes(layer, row) if row else [],
        is_asset=layer in ASSET_LAYERS,
        asset_statuses=[(s, tr_value(s, _)) for s in ASSET_STATUSES],
        moves=[(s, tr_value(s, _)) for s in parcels.allowed_transitions(row["status"])]
        if layer == "plots" and row
        else [],
        servicing=_servicing_lines(key) if layer == "plots" and row else [],
        publish_gaps=_publish_gaps(key) if layer == "plots" and row else [],
        items=_history_items(audit_rows(store, layer=layer, feature=key)),
    )
