"""Downloads of a layer: what an export holds for a role, written to a file.

The rule (see :mod:`planner.visibility`): a planner's or admin's download of a layer
holds every feature (no ``status`` means every status); the public's and investors'
holds what the catalogue shows them: every plot but candidates, without the fields
they may not see. Filters narrow either.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from geo import io as geo_io
from geo.crs import export_epsg_codes, parse_epsg
from geo.i18n import N_
from geo.layers import LAYERS
from geo.store import NotFound, Store
from planner import catalogue as cat
from planner.catalogue import (
    BBOX_TEXT,
    Bbox,
    PlotFilters,
    QueryError,
    QueryParams,
    Statuses,
    check_status_names,
)
from planner.visibility import check_readable, is_staff, layer_fields, plot_view

__all__ = [
    "EXPORTABLE",
    "FORMATS",
    "MAX_EXPORT_IDS",
    "PLOT_ONLY",
    "ExportQuery",
    "LayerExportQuery",
    "export_where",
    "export_count",
    "export_file",
]

FORMATS = {"shp.zip": "shp", "gpkg": "gpkg", "geojson": "geojson"}
EXPORTABLE = tuple(n for n in LAYERS if n not in geo_io.NEVER_EXPORTED)
MAX_EXPORT_IDS = 30_000  # ids per filtered export (SQLite's parameter limit is 32766)
PLOT_ONLY = (
    "min_area",
    "max_area",
    "sector",
    "rail",
    "min_power",
    "min_water",
    "ready_by",
    "as_of",
    "status",
    "sort",
)


def _crs_choices(schema: dict[str, Any]) -> None:
    """Document the offered EPSG codes (built when the document is, not at import)."""
    schema["enum"] = [f"EPSG:{code}" for code in export_epsg_codes()]


def _offered_crs(value: str | None) -> str | None:
    if value is not None and parse_epsg(value) not in export_epsg_codes():
        raise ValueError(
            f"{value} is not offered for downloads; use a CRS in use around the "
            "zone, e.g. EPSG:4326, EPSG:3857 or EPSG:32643 (the list: "
            "/api/openapi.json)"
        )
    return value


CRS_FIELD = Field(
    None,
    json_schema_extra=_crs_choices,
    description=N_(
        "Output CRS as EPSG:<code>, one of those in use around the zone "
        "(default: UTM 43N, GeoJSON WGS84)"
    ),
)


class LayerExportQuery(QueryParams):
    """``bbox`` (feature layers) and the output CRS for a download of a layer other than plots."""

    bbox: Bbox = Field(None, description=BBOX_TEXT)
    crs: str | None = CRS_FIELD

    _known_crs = field_validator("crs", mode="after")(_offered_crs)


class ExportQuery(PlotFilters):
    """Catalogue filters and ``bbox`` for a download of the plots, and the output CRS.
    Without filters the layer as your role sees it is exported: every plot for planners,
    every plot but candidates for others."""

    # a download defaults to every status the role sees, where the catalogue shows 'available'
    status: Statuses | None = Field(  # type: ignore[assignment]
        None,
        description="Plot statuses (default: every status "
        "your role sees); 'candidate' for "
        "planners only",
    )
    limit: int = Field(
        MAX_EXPORT_IDS, ge=1, le=MAX_EXPORT_IDS, description=N_("Most plots exported")
    )
    crs: str | None = CRS_FIELD

    @field_validator("status", mode="after")
    @classmethod
    def _known_statuses(  # type: ignore[override]  # replaces the catalogue's (None allowed)
        cls, value: tuple[str, ...] | None
    ) -> tuple[str, ...] | None:
        return None if value is None else check_status_names(value)

    _known_crs = field_validator("crs", mode="after")(_offered_crs)

    @property
    def statuses(self) -> tuple[str, ...] | None:
        """The statuses asked for, None for "every one the role sees"."""
        return self.status if "status" in self.model_fields_set else None


def export_where(
    store: Store,
    layer: str,
    query: ExportQuery | LayerExportQuery,
    *,
    role: str | None,
    servicing: Any = None,
) -> dict[str, Any] | None:
    """The store filter restricting an export of ``layer`` to the query and to the role's view.

    Raises
    ------
    Forbidden
        For a status the role may not see.
    QueryError
        For plot filters on another layer, or too many matches.
    """
    view = plot_view(role)
    if layer == "plots":
        if not isinstance(query, ExportQuery):
            raise TypeError("the plots download takes an ExportQuery")
        where = view.where(query.statuses)
        if not (
            query.attribute_filters or query.servicing_filters or query.bbox or query.area_where()
        ):
            return where
        statuses = query.statuses or view.statuses
        page = cat.search(
            store,
            query.model_copy(update={"offset": 0, "status": statuses}),
            role=role,
            servicing=servicing,
        )
        if page.matched > query.limit:
            raise QueryError(
                f"{page.matched} plots match; narrow the filters to at most {query.limit}", "limit"
            )
        return {"plot_id": page.rows["plot_id"].tolist()}
    given = sorted(set(PLOT_ONLY) & query.model_fields_set)  # an ExportQuery on another layer
    if given:
        raise QueryError(f"{given[0]}: filters the plots layer only", given[0])
    if query.bbox is None:
        return None
    # Only features whose geometry meets the box are selected: none of a table's rows.
    box = cat.working_bbox(query.bbox) if LAYERS[layer].is_feature else ()
    key = LAYERS[layer].key
    ids = [] if not box else store.read(layer, bbox=box)[key].tolist()
    if len(ids) > MAX_EXPORT_IDS:
        raise QueryError(f"{len(ids)} features in the box; narrow it", "bbox")
    return {key: ids}


def _check_exportable(layer: str, role: str | None) -> None:
    check_readable(layer, role)
    if layer not in EXPORTABLE:
        raise NotFound(f"layer {layer!r} is never exported")


def export_count(store: Store, layer: str, *, role: str | None) -> int:
    """How many features an unfiltered download of ``layer`` holds for ``role``."""
    _check_exportable(layer, role)
    return store.count(layer, where=export_where(store, layer, ExportQuery(), role=role))


def export_file(
    store: Store,
    layer: str,
    fmt: str,
    query: ExportQuery | LayerExportQuery,
    folder: Path,
    *,
    role: str | None,
    servicing: Any = None,
) -> Path:
    """Write the role's export of ``layer`` as ``fmt`` (a key of ``FORMATS``) into ``folder``.

    Returns
    -------
    Path
        The file written (named by :func:`geo.io.export_filename`).

    Raises
    ------
    NotFound, Forbidden
        For layers the role may not read (or that are never exported).
    QueryError
        For bad filters or a file that cannot be written (the reason in words).
    """
    _check_exportable(layer, role)
    where = export_where(store, layer, query, role=role, servicing=servicing)
    name = geo_io.export_filename(layer, FORMATS[fmt])
    try:
        return geo_io.export_layers(
            store,
            layer,
            FORMATS[fmt],
            Path(folder) / name,
            crs=query.crs,
            where=where,
            include_private=is_staff(role),
            fields=layer_fields(layer, role),
        )
    except ValueError as err:
        if isinstance(err, QueryError):
            raise
        raise QueryError(str(err)) from None
