"""Investors' catalogue: validated plot filters answered from the store and servicing model.

Framework-free (pygeoapi's "API core"): the web layer hands in plain query
parameters, a role and the cached servicing model, and gets back either rows or
a WGS84 GeoJSON FeatureCollection; errors are typed (:class:`QueryError`,
:class:`Forbidden`, ``geo.store.NotFound``) so any adapter maps them to statuses.

The filter model :class:`PlotFilters` is the one the API validates with and the
OpenAPI generator documents.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import weakref
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from geo.crs import WEB_DECIMALS, epsg_of
from geo.i18n import N_
from geo.layers import PLOT_STATUSES, SECTORS, parse_sectors
from geo.store import ListHas, Range, Store, plot_boxes
from geo.store.base import Rows
from geo.values import plain
from planner import messages
from planner.catalogue_facts import (
    FACT_COLUMNS,
    _ready_by,
    fact_columns,
    facts_for,
    servicing_facts,
)
from planner.catalogue_layers import (
    geojson_fragments,
    layer_collection,
    layer_summary,
    layer_where,
    to_geojson_geometries,
    working_bbox,
)
from planner.messages import Translate
from planner.visibility import (
    Forbidden,
    PlotView,
    check_readable,
    plot_view,
    readable_layers,
)

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "FACT_COLUMNS",
    "Forbidden",
    "QueryError",
    "PlotFilters",
    "QueryParams",
    "IsoDate",
    "Statuses",
    "check_status_names",
    "LayerQuery",
    "PlotPage",
    "parse_filters",
    "parse_model",
    "search",
    "get_plot",
    "check_readable",
    "working_bbox",
    "readable_layers",
    "layer_summary",
    "layer_collection",
    "layer_where",
    "plot_properties",
    "plot_feature",
    "servicing_facts",
    "facts_for",
    "to_geojson_geometries",
]

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000  # one page of a map view at editing zooms
PUBLIC_PLOT_STATUS = "available"
# Sort keys the catalogue accepts -> column of the joined frame.
SORT_COLUMNS = {
    "plot_id": "plot_id",
    "area_ha": "area_ha",
    "status": "status",
    "power": "power_headroom_kw",
    "water": "water_headroom_m3d",
    "ready": "ready",
}
SORT_VALUES = tuple(v for k in SORT_COLUMNS for v in (k, f"-{k}"))
SortKey = Literal[SORT_VALUES]  # type: ignore[valid-type]
_LON = r"-?(?:180(?:\.0+)?|(?:1[0-7]\d|[1-9]?\d)(?:\.\d+)?)"  # -180..180
_LAT = r"-?(?:90(?:\.0+)?|[1-8]?\d(?:\.\d+)?)"  # -90..90
BBOX_PATTERN = rf"^{_LON},{_LAT},{_LON},{_LAT}$"
BBOX_TEXT = N_(
    "minLon,minLat,maxLon,maxLat in WGS84: longitudes -180..180, latitudes -90..90, "
    "minLon <= maxLon and minLat <= maxLat (else 400)"
)


class QueryError(ValueError):
    """A request parameter is malformed or out of range; ``field`` names it."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def _comma_list(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def check_status_names(value: tuple[str, ...]) -> tuple[str, ...]:
    """``value`` without repeats, or ValueError naming unknown statuses (or none given)."""
    unknown = [s for s in value if s not in PLOT_STATUSES]
    if unknown:
        raise ValueError(
            f"unknown plot status {', '.join(map(repr, unknown))}; "
            f"use a comma list of {', '.join(PLOT_STATUSES)}"
        )
    if not value:
        raise ValueError("give at least one status")
    return tuple(dict.fromkeys(value))


Statuses = Annotated[
    tuple[str, ...],
    BeforeValidator(_comma_list),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": rf"^({'|'.join(PLOT_STATUSES)})"
            rf"(,({'|'.join(PLOT_STATUSES)}))*$",
            "description": N_("comma list of plot statuses"),
        }
    ),
]
Bbox = Annotated[
    tuple[float, float, float, float] | None,
    BeforeValidator(_comma_list),
    WithJsonSchema({"type": "string", "pattern": BBOX_PATTERN, "description": BBOX_TEXT}),
]
Sector = Literal[SECTORS]  # type: ignore[valid-type]


def _iso_date(value: Any) -> Any:
    """Only ``YYYY-MM-DD`` text is a date (pydantic alone would read ``0`` as 1970-01-01)."""
    if isinstance(value, str) and not ISO_DATE.fullmatch(value.strip()):
        raise ValueError("give a date as YYYY-MM-DD")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise ValueError("give a date as YYYY-MM-DD")
    return value


ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
IsoDate = Annotated[
    dt.date,
    BeforeValidator(_iso_date),
    WithJsonSchema({"type": "string", "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"}),
]


class QueryParams(BaseModel):
    """Base of query-parameter models: unknown parameters and NaN/inf are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("bbox", mode="after", check_fields=False)
    @classmethod
    def _bbox_in_range(cls, value: tuple[float, ...] | None) -> tuple[float, ...] | None:
        if value is None:
            return None
        min_lon, min_lat, max_lon, max_lat = value
        if not (
            -180 <= min_lon <= 180
            and -180 <= max_lon <= 180
            and -90 <= min_lat <= 90
            and -90 <= max_lat <= 90
        ):
            raise ValueError("longitudes must lie in -180..180 and latitudes in -90..90")
        if min_lon > max_lon or min_lat > max_lat:
            raise ValueError("give minLon,minLat,maxLon,maxLat with min <= max")
        return value


class PlotFilters(QueryParams):
    """Catalogue filters (``GET /api/plots``, the ``/plots`` page and catalogue exports).

    Areas are hectares (inclusive); ``rail``, ``min_power``, ``min_water`` and
    ``ready_by`` are answered by the servicing model with the infrastructure as
    recorded, or as of ``as_of``. ``limit`` above 10,000 is refused (400), not clamped.
    """

    min_area: float | None = Field(
        None,
        ge=0,
        description=N_("Minimum plot area, ha (inclusive); not above max_area (else 400)"),
    )
    max_area: float | None = Field(
        None,
        ge=0,
        description=N_("Maximum plot area, ha (inclusive); not below min_area (else 400)"),
    )
    sector: Sector | None = Field(None, description=N_("Only plots that allow this sector"))
    rail: bool | None = Field(None, description=N_("Rail access available (true) or not (false)"))
    min_power: float | None = Field(None, ge=0, description=N_("Power headroom at least this, kW"))
    min_water: float | None = Field(
        None, ge=0, description=N_("Water headroom at least this, m³/day")
    )
    ready_by: IsoDate | None = Field(None, description=N_("Fully serviced on or before this date"))
    as_of: IsoDate | None = Field(
        None,
        description=N_(
            "Answer servicing as of this date, assuming "
            "due repairs are done (default: infrastructure as recorded)"
        ),
    )
    status: Statuses = Field(
        PUBLIC_PLOT_STATUS,
        validate_default=True,
        description=N_("Plot statuses (default: available); 'candidate' for planners only"),
    )
    bbox: Bbox = Field(None, description=BBOX_TEXT)
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description=N_("Page size (1..10000)"))
    offset: int = Field(0, ge=0, le=10_000_000, description=N_("Features to skip"))
    sort: SortKey = Field("plot_id", description=N_("Sort key; a leading '-' sorts descending"))

    @field_validator("status", mode="after")
    @classmethod
    def _known_statuses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return check_status_names(value)

    @field_validator("max_area", mode="after")
    @classmethod
    def _area_range(cls, value: float | None, info: ValidationInfo) -> float | None:
        low = info.data.get("min_area")
        if value is not None and low is not None and low > value:
            raise ValueError(f"{value:g} is below min_area {low:g}")
        return value

    @property
    def servicing_filters(self) -> bool:
        """Whether answering needs the servicing facts of every candidate."""
        return (
            self.rail is not None
            or self.min_power is not None
            or self.min_water is not None
            or self.ready_by is not None
            or SORT_COLUMNS[self.sort.lstrip("-")] not in ("plot_id", "area_ha", "status")
        )

    @property
    def attribute_filters(self) -> bool:
        """Whether attribute filters beyond the status and area apply: the sector (a
        :class:`geo.store.ListHas` on the allowed-sectors list, see :meth:`store_where`)."""
        return self.sector is not None

    def area_where(self) -> dict[str, Range]:
        """The area range as a store filter, answered in SQL ({} without one)."""
        if self.min_area is None and self.max_area is None:
            return {}
        return {"area_ha": Range(self.min_area, self.max_area)}

    def store_where(self) -> dict[str, Any]:
        """The area range and the sector as store filters, answered in SQL; the sector
        matches the plots whose allowed sectors (:func:`geo.layers.parse_sectors`) hold it."""
        where: dict[str, Any] = self.area_where()
        if self.sector is not None:
            where["sectors"] = ListHas(self.sector)
        return where

    def query_string(self, **changes: Any) -> dict[str, str]:
        """The non-default parameters as strings (for links: next page, exports)."""
        data = self.model_dump(exclude_defaults=True)
        if data.get("status") == (PUBLIC_PLOT_STATUS,):
            del data["status"]
        data.update(changes)
        out = {}
        for name, value in data.items():
            if value is None:
                continue
            if isinstance(value, tuple):
                value = ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
            elif isinstance(value, bool):
                value = "true" if value else "false"
            out[name] = str(value)
        return out


class LayerQuery(QueryParams):
    """Paging and bbox for ``GET /api/layers/<name>`` and layer exports."""

    bbox: Bbox = Field(None, description=BBOX_TEXT)
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=10_000, description=N_("Page size (1..10000)"))
    offset: int = Field(0, ge=0, le=10_000_000, description=N_("Features to skip"))
    decimals: int = Field(
        WEB_DECIMALS,
        ge=5,
        le=9,
        description=N_(
            "Decimals of the WGS84 coordinates: 6 (about 0.1 m) by default, 9 "
            "(0.1 mm) for editors that snap to the outlines"
        ),
    )


def parse_model(
    model: type[BaseModel], params: Mapping[str, Any], *, translate: Translate | None = None
) -> Any:
    """Validate ``params`` (e.g. a query string as a dict) with ``model``; the message in
    words (:mod:`planner.messages`), through ``translate`` when given.

    Raises
    ------
    QueryError
        Naming the first offending parameter and why.
    """
    try:
        return model.model_validate(dict(params))
    except ValidationError as err:
        tr = translate or (lambda s: s)
        first = err.errors()[0]
        field = str(first["loc"][0]) if first.get("loc") else None
        known = ", ".join(model.model_fields)
        if first["type"] == "extra_forbidden":
            msg = tr(N_("unknown parameter; known parameters: {known}")).format(known=known)
        elif field == "bbox" and len(first.get("loc", ())) > 1:
            msg = tr(N_("give four numbers: minLon,minLat,maxLon,maxLat"))
        elif first["type"] == "literal_error" and field == "sector":
            msg = tr(N_("unknown sector {input}; use one of {known}")).format(
                input=repr(first.get("input")), known=", ".join(SECTORS)
            )
        else:
            msg = messages.describe(first, known=model.model_fields, translate=translate)
        raise QueryError(f"{field}: {msg}" if field else msg, field) from None


def parse_filters(params: Mapping[str, Any]) -> PlotFilters:
    """Catalogue filters from query parameters; raises :class:`QueryError`."""
    filters: PlotFilters = parse_model(PlotFilters, params)
    return filters


# --------------------------------------------------------------------- plots


@dataclass
class PlotPage:
    """One page of catalogue results, as plain columns (no DataFrame on the request path).

    Attributes
    ----------
    filters : PlotFilters
        The validated filters.
    matched : int
        How many plots match in all (``numberMatched``).
    columns : dict of str to list
        The page's plots: each field ``view`` shows and each of :data:`FACT_COLUMNS`, as
        plain values in page order (None for missing, never NaN).
    geometry : ndarray
        The page's geometries (shapely, store CRS ``epsg``).
    epsg : int
        The store's CRS.
    view : PlotView
        What the caller may see (the fields of :meth:`records`).
    """

    filters: PlotFilters
    matched: int
    columns: dict[str, list[Any]]
    geometry: np.ndarray
    epsg: int
    view: PlotView

    @property
    def returned(self) -> int:
        """How many plots this page holds (``numberReturned``)."""
        return len(self.geometry)

    @property
    def rows(self) -> gpd.GeoDataFrame:
        """The page as a GeoDataFrame (store CRS): for callers that want one, not the
        request path."""
        return gpd.GeoDataFrame(
            {name: self.columns[name] for name in (*self.view.fields, *FACT_COLUMNS)},
            geometry=list(self.geometry),
            crs=self.epsg,
        )

    def records(self) -> list[dict[str, Any]]:
        """The page as plain dicts (no geometry): the list view's rows."""
        names = (*self.view.fields, *FACT_COLUMNS)
        out = [dict(zip(names, values)) for values in zip(*(self.columns[n] for n in names))]
        for record in out:
            record["sectors"] = list(_sector_list(record["sectors"]))
        return out

    def feature_collection(self, *, fragments: bool = False) -> dict[str, Any]:
        """A WGS84 GeoJSON FeatureCollection with ``numberMatched``/``numberReturned``;
        with ``fragments`` its geometries are ``orjson.Fragment`` texts (for orjson only)."""
        geoms: list[Any] = (
            geojson_fragments(self.geometry, epsg=self.epsg)
            if fragments
            else to_geojson_geometries(self.geometry, epsg=self.epsg)
        )
        features = [
            {"type": "Feature", "id": props["plot_id"], "geometry": geom, "properties": props}
            for props, geom in zip(self.records(), geoms)
        ]
        return {
            "type": "FeatureCollection",
            "numberMatched": self.matched,
            "numberReturned": len(features),
            "timeStamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "features": features,
        }


@lru_cache(maxsize=1024)
def _sector_list(text: str | None) -> tuple[str, ...]:
    """The allowed sectors of ``text`` as codes in :data:`SECTORS` order (all for ``*``)."""
    allowed = parse_sectors(text)
    return SECTORS if allowed is None else tuple(s for s in SECTORS if s in allowed)


def plot_properties(row: Mapping[Any, Any], view: PlotView) -> dict[str, Any]:
    """The properties of one catalogue plot that ``view`` shows, with its servicing facts
    (sectors as a list of codes)."""
    out = {name: plain(row.get(name)) for name in (*view.fields, *FACT_COLUMNS)}
    out["sectors"] = list(_sector_list(out["sectors"]))
    for name in ("rail", "power", "water"):
        out[name] = None if out[name] is None else bool(out[name])
    return out


def _join_facts(
    frame: pd.DataFrame, model: Any, as_of: dt.date | None, page: bool = False
) -> pd.DataFrame:
    facts = facts_for(model, frame["plot_id"].tolist(), as_of, page=page)
    return frame.reset_index(drop=True).assign(
        **{column: facts[column].to_numpy() for column in FACT_COLUMNS}
    )


def search(
    store: Store, filters: PlotFilters, *, role: str | None = None, servicing: Any = None
) -> PlotPage:
    """Answer catalogue filters: the store's R-tree and attribute filters first, then the
    servicing facts, then sort and page.

    Without servicing filters the store counts, sorts and pages in SQL and the page's
    rows go straight to plain columns (:meth:`geo.store.Store.rows`); the servicing
    filters read every candidate's facts by column and filter, sort and page in pandas.
    Either way ties sort by plot_id and missing values last.

    Parameters
    ----------
    store : Store
        The zone store.
    filters : PlotFilters
        Validated filters (see :func:`parse_filters`).
    role : str, optional
        The caller's role; its :func:`planner.visibility.plot_view` decides the statuses
        it may ask for and the fields it gets.
    servicing : ServicingModel, optional
        The (cached) servicing model of the store's current revision; its answers
        are cached per date. Needed for the servicing filters and facts.

    Raises
    ------
    Forbidden
        For a status the role may not see.
    """
    view = plot_view(role)
    where: dict[str, Any] = {**(view.where(filters.status) or {}), **filters.store_where()}
    bbox = working_bbox(filters.bbox, store.epsg)
    if bbox is not None and not bbox:  # outside the store CRS's area: nothing matches
        empty = Rows({name: [] for name in view.fields}, np.empty(0, dtype=object))
        return _page(filters, 0, empty, store.epsg, view)
    as_of = filters.as_of
    if filters.servicing_filters and servicing is None:
        raise ValueError("the servicing filters need the servicing model (servicing=...)")
    if not filters.servicing_filters:
        # Everything the store can answer itself: count, sort and page. A viewport is
        # counted and paged from the plots' boxes in memory when their index holds this
        # revision (the page's rows then read by key), else in SQL by one query; the whole
        # zone's count is kept per revision instead.
        paging: dict[str, Any] = dict(where=where or None, order_by=filters.sort)
        paging.update(limit=filters.limit, offset=filters.offset)
        rows = None if bbox is None else plot_boxes.page(store, view.fields, bbox=bbox, **paging)
        if rows is None:
            rows = store.rows("plots", view.fields, bbox=bbox, **paging, matched=bbox is not None)
        matched = rows.matched if rows.matched is not None else _zone_count(store, where)
        columns = {**rows.columns, **fact_columns(servicing, rows.columns["plot_id"], as_of)}
        assert rows.geometry is not None  # plots are features
        return PlotPage(filters, matched, columns, rows.geometry, store.epsg, view)
    frame = store.read("plots", bbox=bbox, where=where or None)
    frame = _join_facts(frame, servicing, as_of)
    frame = frame[_servicing_mask(frame, filters)]
    frame = _sorted(frame, filters.sort)
    page = frame.iloc[filters.offset : filters.offset + filters.limit]
    return _page(filters, len(frame), page, store.epsg, view)


_COUNTS: weakref.WeakKeyDictionary[Store, OrderedDict[Hashable, int]] = weakref.WeakKeyDictionary()
_COUNTS_LOCK = threading.Lock()
_COUNTS_KEPT = 64  # counts kept per store


def _zone_count(store: Store, where: Mapping[str, Any]) -> int:
    """How many plots of the whole zone match: counted in SQL once per plots revision (a
    scan of the layer), so paging through the zone counts once, not per page."""
    key: Hashable = (
        store.revision(["plots"]),
        tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in where.items())),
    )
    with _COUNTS_LOCK:
        kept = _COUNTS.get(store)
        known = None if kept is None else kept.get(key)
    if known is not None:
        return known
    matched = store.count("plots", where=where or None)
    with _COUNTS_LOCK:
        counts = _COUNTS.setdefault(store, OrderedDict())
        counts[key] = matched
        while len(counts) > _COUNTS_KEPT:
            counts.popitem(last=False)
    return matched


def _page(filters: PlotFilters, matched: int, rows: Any, epsg: int, view: PlotView) -> PlotPage:
    """A :class:`PlotPage` from a joined frame or from :class:`geo.store.base.Rows`
    without facts (an empty page)."""
    names = (*view.fields, *FACT_COLUMNS)
    if isinstance(rows, pd.DataFrame):
        columns = {name: [plain(v) for v in rows[name].tolist()] for name in names}
        for name in ("rail", "power", "water"):
            columns[name] = [None if v is None else bool(v) for v in columns[name]]
        geoms = np.asarray(rows.geometry.values, dtype=object)
    else:
        columns = {name: list(rows.columns.get(name, [])) for name in names}
        geoms = rows.geometry
    return PlotPage(filters, matched, columns, geoms, epsg, view)


def _servicing_mask(frame: pd.DataFrame, filters: PlotFilters) -> np.ndarray:
    mask = np.ones(len(frame), dtype=bool)
    if filters.rail is not None:
        mask &= frame["rail"].fillna(False).astype(bool).to_numpy() == filters.rail
    if filters.min_power is not None:
        headroom = frame["power_headroom_kw"].to_numpy(dtype=float)
        mask &= frame["power"].fillna(False).astype(bool).to_numpy() & (
            headroom >= filters.min_power
        )
    if filters.min_water is not None:
        headroom = frame["water_headroom_m3d"].to_numpy(dtype=float)
        mask &= frame["water"].fillna(False).astype(bool).to_numpy() & (
            headroom >= filters.min_water
        )
    if filters.ready_by is not None:
        mask &= _ready_by(frame["ready"], filters.ready_by)
    return mask


def _sorted(frame: pd.DataFrame, sort: str) -> pd.DataFrame:
    key, ascending = sort.lstrip("-"), not sort.startswith("-")
    if key == "plot_id":
        return frame.sort_values("plot_id", ascending=ascending, kind="stable")
    if key == "ready":
        text = frame["ready"].fillna("unknown").astype(str)
        value = text.replace("now", "0000-00-00").mask(text == "unknown")
    elif key in ("power", "water"):  # headroom counts only where the plot can connect
        value = frame[SORT_COLUMNS[key]].where(frame[key].fillna(False).astype(bool))
    else:
        value = frame[SORT_COLUMNS[key]]
    order = frame.assign(_sort=value.to_numpy()).sort_values(
        ["_sort", "plot_id"], ascending=[ascending, True], kind="stable", na_position="last"
    )
    return order.drop(columns="_sort")


def get_plot(
    store: Store,
    plot_id: str,
    *,
    role: str | None = None,
    servicing: Any = None,
    as_of: dt.date | None = None,
) -> pd.DataFrame:
    """One plot (a one-row frame joined with its servicing facts).

    Raises
    ------
    NotFound
        When the plot does not exist or the role may not see it (the same error, so a
        hidden plot looks exactly like a missing one).
    """
    view = plot_view(role)
    rows = store.read("plots", where={"plot_id": plot_id})
    view.require(None if rows.empty else rows.iloc[0], plot_id)
    return _join_facts(view.visible(rows), servicing, as_of, True)


def plot_feature(rows: pd.DataFrame, role: str | None) -> dict[str, Any]:
    """The first row of a :func:`get_plot` frame as a WGS84 GeoJSON Feature."""
    props = plot_properties(rows.drop(columns="geometry").iloc[0].to_dict(), plot_view(role))
    return {
        "type": "Feature",
        "id": props["plot_id"],
        "geometry": to_geojson_geometries(rows.geometry.values, epsg=epsg_of(rows))[0],
        "properties": props,
    }
