"""JSON API operations on plots (catalogue, one plot, servicing, zone indicators) and layers."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlencode

from flask import url_for
from flask_babel import gettext
from pydantic import BaseModel, ConfigDict, Field

from geo.i18n import N_
from geo.layers import LAYERS, PLOT_STATUSES, SECTORS
from planner import catalogue as cat
from planner.catalogue import PlotFilters
from planner.kpi import kpi as kpi_of
from planner.visibility import NEVER_SERVED
from web import deps
from web.api import PLOT_ID, AsOfQuery, Geometry, endpoint, fast_json
from web.auth import current_role
from web.dashboard import timeline as plan_timeline

__all__ = ["PlotFeature", "PlotCollection", "LayerCollection", "LayerList"]


class Link(BaseModel):
    href: str
    rel: str
    type: str | None = None


class PlotProperties(BaseModel):
    """A catalogue plot with its key servicing facts."""

    plot_id: str
    cadastre: str | None
    status: Literal[PLOT_STATUSES]  # type: ignore[valid-type]
    area_ha: float | None
    sectors: list[Literal[SECTORS]]  # type: ignore[valid-type]
    hazard_ok: int | None
    exp_id: str | None
    rail: bool | None = Field(description="Rail access available")
    rail_distance_m: float | None
    power: bool | None = Field(description="Power connection available")
    power_headroom_kw: float | None
    water: bool | None
    water_headroom_m3d: float | None
    ready: str | None = Field(
        description="'now', a date (YYYY-MM-DD) or 'unknown'; counts "
        "road, power and water (rail when the plot needs "
        "it), not storm sewer or gas"
    )
    waits_for: list[str] | None = Field(
        description="Required services not there yet (road, "
        "rail, power, water): what readiness "
        "waits for"
    )


class PlotFeature(BaseModel):
    """One plot as a GeoJSON Feature (id = plot_id)."""

    type: Literal["Feature"]
    id: str
    geometry: Geometry | None
    properties: PlotProperties


class PlotCollection(BaseModel):
    """Catalogue plots as a GeoJSON FeatureCollection (WGS84)."""

    type: Literal["FeatureCollection"]
    numberMatched: int
    numberReturned: int
    timeStamp: str
    features: list[PlotFeature]
    links: list[Link]


class LayerFeature(BaseModel):
    type: Literal["Feature"]
    id: str
    geometry: Geometry | None
    properties: dict[str, Any]


class LayerCollection(BaseModel):
    """A page of a layer as a GeoJSON FeatureCollection (tables: null geometries)."""

    type: Literal["FeatureCollection"]
    numberMatched: int
    numberReturned: int
    timeStamp: str
    features: list[LayerFeature]


class LayerInfo(BaseModel):
    name: str
    label: str
    geometry: Literal["Point", "LineString", "Polygon"] | None
    count: int
    public: bool
    asset: bool


class LayerList(BaseModel):
    """The layers your role may read."""

    layers: list[LayerInfo]


class ServicingOut(BaseModel):
    """A plot's servicing record and the same answer in words."""

    plot_id: str
    as_of: str | None
    record: dict[str, Any]
    explain: list[str]


class TargetMonths(BaseModel):
    """One plan target and its actual value at the end of each month."""

    target_id: str
    name: str | None
    metric: str
    year: int
    target: float | None
    actual: list[float | None] = Field(description="One value per month of ``months``")


class ApplicationMonths(BaseModel):
    """Applications filed and accepted by the end of each month (cumulative counts)."""

    filed: list[int]
    accepted: list[int]


class TimelineOut(BaseModel):
    """The plan's progress month by month (planner.kpi.timeline)."""

    months: list[str] = Field(description="YYYY-MM, from January of the plan year")
    targets: list[TargetMonths]
    applications: ApplicationMonths


class KpiOut(BaseModel):
    """Zone indicators (planner.kpi)."""

    model_config = ConfigDict(extra="allow")


#: What stays unquoted in a link's query, as Werkzeug's url_for leaves it.
_URL_SAFE = "!$'()*,/:;?@"


def _links(page: cat.PlotPage) -> list[dict[str, str]]:
    """``self``, ``next`` and ``prev`` links: the filters' query string is built once,
    the path taken from the route once (url_for per link cost more than the page's JSON)."""
    f = page.filters
    path, params = url_for("api.list_plots"), f.query_string()

    def link(rel: str, **changes: int) -> dict[str, str]:
        query = urlencode({**params, **{k: str(v) for k, v in changes.items()}}, safe=_URL_SAFE)
        href = f"{path}?{query}" if query else path
        return {"href": href, "rel": rel, "type": "application/geo+json"}

    links = [link("self")]
    if f.offset + f.limit < page.matched:
        links.append(link("next", offset=f.offset + f.limit))
    if f.offset:
        links.append(link("prev", offset=max(0, f.offset - f.limit)))
    return links


@endpoint(
    "get",
    "/plots",
    summary=N_("Plots of the catalogue (GeoJSON, WGS84)"),
    tag="plots",
    query=PlotFilters,
    response=PlotCollection,
    errors=(401, 403),
    description=N_(
        "Available plots by default; 'status' may ask for any status your "
        "role sees (candidates for planners only, else 403). "
        "The bbox uses the store's spatial index; rail, power, water and "
        "ready_by use the cached servicing answers. limit > 10000 is refused (400)."
    ),
)
def list_plots(query: PlotFilters):
    page = cat.search(
        deps.get_store(), query, role=current_role(), servicing=deps.servicing_model()
    )
    out = page.feature_collection(fragments=True)
    out["links"] = _links(page)
    return fast_json(out)


@endpoint(
    "get",
    "/plots/{plot_id}",
    summary=N_("One plot (GeoJSON Feature)"),
    tag="plots",
    query=AsOfQuery,
    response=PlotFeature,
    path_params=PLOT_ID,
    description=N_("Candidate plots are 404 except for planners, like missing ones."),
)
def get_plot(plot_id: str, query: AsOfQuery):
    role = current_role()
    rows = cat.get_plot(
        deps.get_store(), plot_id, role=role, servicing=deps.servicing_model(), as_of=query.as_of
    )
    return cat.plot_feature(rows, role)


@endpoint(
    "get",
    "/servicing/{plot_id}",
    summary=N_("A plot's servicing answer, in words too"),
    tag="plots",
    query=AsOfQuery,
    response=ServicingOut,
    path_params=PLOT_ID,
)
def servicing(plot_id: str, query: AsOfQuery):
    cat.get_plot(
        deps.get_store(), plot_id, role=current_role()
    )  # 404 for what the role may not see
    record = deps.servicing_model().answer([plot_id], as_of=query.as_of)[0]
    return {
        "plot_id": plot_id,
        "as_of": None if query.as_of is None else query.as_of.isoformat(),
        "record": record,
        "explain": deps.explain(record, translate=gettext),
    }


@endpoint(
    "get",
    "/kpi",
    summary=N_("Zone indicators"),
    tag="plots",
    query=AsOfQuery,
    response=KpiOut,
    roles=("planner",),
    errors=(503,),
)
def kpi(query: AsOfQuery):
    snapshot = deps.deps().cached(
        "kpi_snapshot", lambda: {**deps.snapshot(), "targets": deps.get_store().read("targets")}
    )
    return kpi_of(snapshot, as_of=query.as_of, model=deps.servicing_model())


@endpoint(
    "get",
    "/kpi/timeline",
    summary=N_("Progress against the plan, month by month"),
    description=N_(
        "Each plan target's actual value at the end of every month since January of "
        "the plan year (the figures the dashboard's chart draws; the last month equals /api/kpi "
        "for targets already due), and applications filed and accepted by then."
    ),
    tag="plots",
    response=TimelineOut,
    roles=("planner",),
)
def kpi_timeline():
    return plan_timeline()


# --------------------------------------------------------------------------- layers
LAYER_NAME = {"name": {"type": "string", "enum": [n for n in LAYERS if n not in NEVER_SERVED]}}


@endpoint("get", "/layers", summary=N_("Layers you may read"), tag="layers", response=LayerList)
def list_layers():
    return {"layers": cat.layer_summary(deps.get_store(), current_role())}


@endpoint(
    "get",
    "/layers/{name}",
    summary=N_("A layer's features (GeoJSON, WGS84)"),
    tag="layers",
    query=cat.LayerQuery,
    response=LayerCollection,
    path_params=LAYER_NAME,
    errors=(401, 403),
    description=N_("Non-public layers are for planners; investors see the available plots only."),
)
def get_layer(name: str, query: cat.LayerQuery):
    return cat.layer_collection(deps.get_store(), name, query, role=current_role())
