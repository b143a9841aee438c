"""Planners' edits through the JSON API: draw, check, reshape, promote and delete plots, and
set infrastructure statuses. A thin adapter over planner.parcels and the store.

Every write runs in one store transaction under the planner's user name, so the store
audits it; versions are required and a stale one is refused (409). The operations are
declared with :func:`web.api.endpoint` and so appear in the same OpenAPI document.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from flask import Response
from flask_babel import gettext
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator
from pydantic_core import PydanticCustomError

from geo.i18n import N_
from geo.layers import (
    ASSET_LAYERS,
    ASSET_STATUSES,
    ID_MAX_LENGTH,
    NOTE_MAX_LENGTH,
    PLOT_STATUSES,
    SECTORS,
    TEXT_MAX_LENGTH,
    get_layer,
)
from geo.store import Invalid, NotFound, Store
from geo.validate import Problem as SchemaProblem
from planner import parcels
from planner.catalogue import IsoDate, to_geojson_geometries
from web import deps
from web.api import PLOT_ID, api_error_with_problems, bp, endpoint
from web.auth import api_error, current_username

__all__ = [
    "bp",
    "feature_json",
    "PlotIn",
    "PlotPatch",
    "AssetPatch",
    "CheckIn",
    "CheckOut",
    "EditedPlot",
    "EditedAsset",
    "VersionQuery",
    "EDITABLE_PLOT_FIELDS",
]

# --------------------------------------------------------------------------- models
POLYGON_SCHEMA = {
    "type": "object",
    "required": ["type", "coordinates"],
    "description": "A GeoJSON Polygon in WGS84 (longitude, latitude), rings closed",
    "properties": {
        "type": {"type": "string", "enum": ["Polygon"]},
        "coordinates": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "array",
                "minItems": 4,
                "items": {
                    "type": "array",
                    "minItems": 2,
                    "maxItems": 3,
                    "items": {"type": "number"},
                },
            },
        },
    },
}
PolygonJSON = Annotated[dict[str, Any], WithJsonSchema(POLYGON_SCHEMA)]
TEXT = TEXT_MAX_LENGTH  # the schema's limits (geo/layers.py), as every import applies them
NOTE = NOTE_MAX_LENGTH
#: Plot attributes planners may set when drawing or editing (the rest is computed, or the
#: lifecycle's: status moves through PATCH only).
EDITABLE_PLOT_FIELDS = (
    "cadastre",
    "sectors",
    "hazard_ok",
    "power_kw",
    "water_m3d",
    "rail_need",
    "resident",
    "project",
    "sector",
    "invest",
    "jobs",
    "hazard",
    "floor_m2",
    "start_yr",
)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, allow_inf_nan=False)


class PlotAttributes(_In):
    """Attributes of a plot a planner may set (all optional)."""

    cadastre: str | None = Field(None, max_length=TEXT, description="Cadastral number")
    sectors: str | None = Field(
        None,
        max_length=TEXT,
        description=N_("Allowed sectors: '*' (any) or a comma list of the codes `sector` takes"),
    )
    hazard_ok: int | None = Field(None, ge=1, le=5, description="Highest hazard class allowed")
    power_kw: float | None = Field(None, ge=0, description="Power demand, kW")
    water_m3d: float | None = Field(None, ge=0, description="Water demand, m³/day")
    rail_need: bool | None = Field(None, description="Needs rail")
    resident: str | None = Field(None, max_length=TEXT, description="Resident")
    project: str | None = Field(None, max_length=TEXT, description="Project")
    sector: Literal[SECTORS] | None = Field(None, description="Occupant's sector")  # type: ignore[valid-type]
    invest: float | None = Field(None, ge=0, description="Investment, tenge")
    jobs: int | None = Field(None, ge=0, description="Jobs")
    hazard: int | None = Field(None, ge=1, le=5, description="Hazard class")
    floor_m2: float | None = Field(None, ge=0, description="Production floor, m²")
    start_yr: int | None = Field(None, ge=1900, le=2100, description="Start year")

    @field_validator("sectors", mode="after")
    @classmethod
    def _known_sectors(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "*":
            return value
        codes = [s.strip() for s in value.split(",") if s.strip()]
        unknown = sorted(set(codes) - set(SECTORS))
        if unknown or not codes:
            raise PydanticCustomError(
                "unknown_sectors",
                "unknown sector code(s) {unknown}; use {known} or *",
                {"unknown": ", ".join(unknown) or repr(value), "known": ", ".join(SECTORS)},
            )
        return ",".join(codes)


class PlotIn(BaseModel):
    """A drawn parcel as a GeoJSON Feature (WGS84); it is stored as a candidate plot with a
    new id. Foreign members such as ``id`` or ``bbox`` are ignored."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["Feature"] = Field(description=N_("Always 'Feature'"))
    geometry: PolygonJSON = Field(description=N_("The parcel outline"))
    properties: PlotAttributes | None = Field(None, description=N_("Attributes to set"))


class PlotPatch(PlotAttributes):
    """Change a plot: its outline (candidates and available plots only), its status along
    the lifecycle (candidate → available → reserved → allocated → occupied, and back where
    allowed) and attributes. Send only what changes, with the version you saw."""

    version: int = Field(..., ge=1, description=N_("The version you saw (stale -> 409)"))
    geometry: PolygonJSON | None = Field(None, description=N_("New outline"))
    status: Literal[PLOT_STATUSES] | None = Field(None, description=N_("New status"))  # type: ignore[valid-type]
    confirm: bool = Field(
        False,
        description=N_(
            "Publish (status available) although the plot has no road or no water main within reach"
        ),
    )


class AssetPatch(_In):
    """Set an infrastructure asset's status, dates and note (send only what changes).

    When the status changes and ``since`` is not sent, ``since`` becomes today."""

    version: int = Field(..., ge=1, description=N_("The version you saw (stale -> 409)"))
    status: Literal[ASSET_STATUSES] | None = Field(None, description=N_("New status"))  # type: ignore[valid-type]
    since: IsoDate | None = Field(None, description=N_("Status since (YYYY-MM-DD)"))
    due: IsoDate | None = Field(
        None, description=N_("Due to be operational (YYYY-MM-DD); null clears it")
    )
    note: str | None = Field(None, max_length=NOTE, description=N_("Note; null clears it"))


class CheckIn(_In):
    """A drawn outline to check (nothing is stored)."""

    geometry: PolygonJSON = Field(description=N_("The outline"))
    exclude_plot_id: str | None = Field(
        None,
        min_length=1,
        max_length=ID_MAX_LENGTH,
        description=N_("The plot being redrawn (it does not overlap itself)"),
    )
    as_of: IsoDate | None = Field(None, description=N_("Answer servicing as of this date"))
    power_kw: float | None = Field(None, ge=0, description=N_("Power demand to test, kW"))
    water_m3d: float | None = Field(None, ge=0, description=N_("Water demand to test, m³/day"))
    rail_need: bool = Field(False, description=N_("Whether rail access is needed"))


class VersionQuery(BaseModel):
    """The version you saw."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(..., ge=1, description=N_("The version you saw (stale -> 409)"))


class ParcelIssue(BaseModel):
    """One problem (or warning) of a drawn parcel, in words."""

    code: Literal[
        "empty",
        "type",
        "invalid",
        "outside",
        "overlaps_plot",
        "overlaps_protection",
        "too_small",
        "crosses_road",
    ]
    message: str
    ids: list[str] = Field(description="Plots, protection zones or roads involved")


class CheckOut(BaseModel):
    """The verdict on a drawn parcel: area, problems, and its servicing answer."""

    area_ha: float = Field(description="Metric area, ha")
    valid: bool = Field(description="Whether it may be stored as a plot")
    exp_id: str | None = Field(description="Expansion area holding most of it")
    problems: list[ParcelIssue]
    warnings: list[ParcelIssue]
    servicing: dict[str, Any] | None = Field(
        description="planner.servicing record (null when the outline is not a valid polygon)"
    )
    explain: list[str] = Field(description="The servicing answer in words")


class EditedPlotProperties(BaseModel):
    """Every stored attribute of a plot, its computed area and version."""

    model_config = ConfigDict(extra="allow")

    plot_id: str
    status: Literal[PLOT_STATUSES]  # type: ignore[valid-type]
    area_ha: float | None
    version: int


class EditedPlot(BaseModel):
    """A plot as stored after the edit (GeoJSON Feature, WGS84)."""

    type: Literal["Feature"]
    id: str
    geometry: dict[str, Any] | None
    properties: EditedPlotProperties
    warnings: list[ParcelIssue] = Field([], description="Worth a look, not refused")


class EditedAssetProperties(BaseModel):
    model_config = ConfigDict(extra="allow")

    asset_id: str
    status: Literal[ASSET_STATUSES]  # type: ignore[valid-type]
    since: str | None
    due: str | None
    note: str | None
    version: int


class EditedAsset(BaseModel):
    """An asset as stored after the edit (GeoJSON Feature, WGS84)."""

    type: Literal["Feature"]
    id: str
    layer: str
    geometry: dict[str, Any] | None
    properties: EditedAssetProperties


# --------------------------------------------------------------------------- helpers
def feature_json(layer: str, row: dict[str, Any]) -> dict[str, Any]:
    """A stored row (``Store.get``) as a WGS84 GeoJSON Feature with every schema field."""
    lyr = get_layer(layer)
    geom = row.get("geometry")
    props = {name: row.get(name) for name in lyr.names}
    return {
        "type": "Feature",
        "id": str(row[lyr.key]),
        # 0.1 mm: the editor snaps to these corners, and 6 decimals would leave slivers
        "geometry": (
            to_geojson_geometries([geom], epsg=deps.get_store().epsg, decimals=9)[0]
            if geom is not None
            else None
        ),
        "properties": props,
    }


def _polygon(geometry: Any) -> Any:
    """The store-CRS polygon of a drawn GeoJSON geometry; 422 naming the coordinate."""
    try:
        return parcels.polygon_from_geojson(geometry, epsg=deps.get_store().epsg)
    except parcels.ParcelInputError as err:
        raise Invalid([SchemaProblem(None, None, err.field, str(err))]) from None


def _issues(items: tuple[parcels.ParcelProblem, ...]) -> list[dict[str, Any]]:
    return [p.to_dict(gettext) for p in items]


def _user() -> str:
    return current_username() or "unknown"


@bp.errorhandler(parcels.PublishUnconfirmed)
def _publish_unconfirmed(err: parcels.PublishUnconfirmed):
    """409 with ``field`` confirm and the servicing answer of each missing utility in
    ``problems`` (``field`` = the utility): send again with ``confirm: true`` to publish."""
    lines = err.lines(gettext)
    return api_error_with_problems(
        err.message(gettext),
        409,
        "confirm",
        [
            SchemaProblem(None, err.plot_id, utility, line)
            for (utility, _), line in zip(err.gaps, lines)
        ],
    )


@bp.errorhandler(parcels.StateConflict)
def _state_conflict(err: parcels.StateConflict):
    """409 naming the field whose present state forbids the change (status, geometry)."""
    return api_error(str(err), 409, err.field)


# --------------------------------------------------------------------------- check
@endpoint(
    "post",
    "/check",
    summary=N_("Check a drawn parcel: area, problems, servicing"),
    tag="planning",
    body=CheckIn,
    response=CheckOut,
    roles=("planner",),
    description=N_(
        "Nothing is stored. 200 with `valid: false` and the problems in words "
        "for outlines that cross themselves, leave the zone, overlap plots or "
        "protection zones, or are too small; 422 only for GeoJSON that cannot "
        "be read."
    ),
)
def check_drawn_parcel(body: CheckIn):
    polygon = _polygon(body.geometry)
    check = parcels.check_parcel(deps.snapshot(), polygon, exclude_plot_id=body.exclude_plot_id)
    record, lines = None, []
    model = deps.servicing_model()
    if (
        check.polygon is not None
        and check.polygon.is_valid
        and check.polygon.geom_type == "Polygon"
    ):
        try:
            record = model.answer_geometry(
                check.polygon,
                as_of=body.as_of,
                power_kw=body.power_kw,
                water_m3d=body.water_m3d,
                rail_need=body.rail_need,
            )
            lines = deps.explain(record, translate=gettext)
        except ValueError as err:
            lines = [str(err)]
    return {**check.to_dict(gettext), "servicing": record, "explain": lines}


# --------------------------------------------------------------------------- plots
def _attributes(model: BaseModel, names: set[str]) -> dict[str, Any]:
    return {name: getattr(model, name) for name in EDITABLE_PLOT_FIELDS if name in names}


@endpoint(
    "post",
    "/plots",
    summary=N_("Store a drawn parcel as a candidate plot"),
    tag="planning",
    body=PlotIn,
    response=EditedPlot,
    status=201,
    roles=("planner",),
    errors=(409,),
    description=N_(
        "The outline is checked again (as /api/check) inside the write "
        "transaction, so two planners cannot store overlapping parcels; the new "
        "plot gets the next free id and status `candidate`. 422 lists every "
        "problem."
    ),
)
def create_plot(body: PlotIn):
    polygon = _polygon(body.geometry)
    attrs = (
        _attributes(body.properties, body.properties.model_fields_set)
        if body.properties is not None
        else {}
    )
    store: Store = deps.get_store()
    plot_id, check = parcels.create_candidate(
        store, polygon, user=_user(), attributes=attrs, translate=gettext
    )
    return {
        **feature_json("plots", store.get("plots", plot_id)),
        "warnings": _issues(check.warnings),
    }


@endpoint(
    "patch",
    "/plots/{plot_id}",
    summary=N_("Change a plot's outline, status or attributes"),
    tag="planning",
    body=PlotPatch,
    response=EditedPlot,
    roles=("planner",),
    path_params=PLOT_ID,
    errors=(409,),
    description=N_(
        "Needs the version you saw: a stale one is refused with 409 and "
        "nothing changes. Status moves follow the lifecycle (an illegal jump "
        "such as occupied → candidate is 409); outlines change only while the "
        "plot is a candidate or available, and are checked as /api/check. "
        "Publishing (status available) a plot with no road or no water main "
        "within reach is 409 (`field` confirm, the servicing answer in "
        "`problems`) unless `confirm` is true."
    ),
)
def patch_plot(plot_id: str, body: PlotPatch):
    sent = body.model_fields_set - {"version", "confirm"}
    if not sent:
        raise Invalid(
            [
                SchemaProblem(
                    None,
                    plot_id,
                    None,
                    gettext("nothing to change: send geometry, status or attributes"),
                )
            ]
        )
    needs = {
        "geometry": gettext("a plot needs an outline"),
        "status": gettext("a plot needs a status"),
    }
    for name, message in needs.items():
        if name in sent and getattr(body, name) is None:
            raise Invalid([SchemaProblem(None, plot_id, name, message)])
    changes = _attributes(body, sent)
    if "status" in sent:
        changes["status"] = body.status
    if "geometry" in sent:
        changes["geometry"] = _polygon(body.geometry)
    store: Store = deps.get_store()
    _, check = parcels.update_plot(
        store,
        plot_id,
        changes,
        version=body.version,
        user=_user(),
        translate=gettext,
        servicing=deps.servicing_model(),
        confirm=body.confirm,
    )
    return {
        **feature_json("plots", store.get("plots", plot_id)),
        "warnings": _issues(check.warnings) if check else [],
    }


@endpoint(
    "delete",
    "/plots/{plot_id}",
    summary=N_("Delete a candidate plot"),
    tag="planning",
    query=VersionQuery,
    status=204,
    roles=("planner",),
    path_params=PLOT_ID,
    errors=(409,),
    description=N_(
        "Only candidates (never offered to investors) may be "
        "deleted; `version` is required (stale -> 409)."
    ),
)
def delete_plot(plot_id: str, query: VersionQuery):
    parcels.delete_candidate(deps.get_store(), plot_id, version=query.version, user=_user())
    return Response(status=204)


# --------------------------------------------------------------------------- assets
ASSET_PATH: dict[str, dict[str, Any]] = {
    "layer": {"type": "string", "enum": list(ASSET_LAYERS)},
    "asset_id": {"type": "string", "minLength": 1, "maxLength": ID_MAX_LENGTH},
}


@endpoint(
    "patch",
    "/assets/{layer}/{asset_id}",
    summary=N_("Set an asset's status, dates or note"),
    tag="planning",
    body=AssetPatch,
    response=EditedAsset,
    roles=("planner",),
    path_params=ASSET_PATH,
    errors=(409,),
    description=N_(
        'E.g. mark substation SS-12 repaired: `{"status": "operational", '
        '"due": null, "version": 3}`. When the status changes without '
        "`since`, `since` becomes today. Servicing answers follow at once."
    ),
)
def patch_asset(layer: str, asset_id: str, body: AssetPatch):
    if layer not in ASSET_LAYERS:
        raise NotFound(f"no infrastructure layer {layer!r}; layers: {', '.join(ASSET_LAYERS)}")
    sent = body.model_fields_set - {"version"}
    if not sent:
        raise Invalid(
            [
                SchemaProblem(
                    None,
                    asset_id,
                    None,
                    gettext("nothing to change: send status, since, due or note"),
                )
            ]
        )
    if "status" in sent and body.status is None:
        raise Invalid([SchemaProblem(None, asset_id, "status", gettext("an asset needs a status"))])
    store: Store = deps.get_store()
    parcels.update_asset(
        store,
        layer,
        asset_id,
        {name: getattr(body, name) for name in sent},
        version=body.version,
        user=_user(),
    )
    return {**feature_json(layer, store.get(layer, asset_id)), "layer": layer}
