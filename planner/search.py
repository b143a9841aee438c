"""Plot search for the map and the catalogue: by plot id, cadastral number, or resident for staff.

Which plots and which fields a search may match is the access policy's answer
(:func:`planner.visibility.plot_view`): a field the role may not see is never searched, and a
plot the role may not see never matches, so a public search cannot reveal a candidate plot or
who holds a plot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import shapely
import shapely.geometry
from pydantic import Field

from geo.store import Store
from planner.catalogue import QueryParams, parse_model, to_geojson_geometries
from planner.visibility import PlotView, plot_view

__all__ = ["SEARCH_FIELDS", "SearchQuery", "SearchHit", "searchable_fields", "find_plots"]

#: Fields a search looks in, in the order a match counts (the first that matches is reported).
SEARCH_FIELDS: tuple[str, ...] = ("plot_id", "cadastre", "resident")
MAX_RESULTS = 50


class SearchQuery(QueryParams):
    """``GET /api/search``: the text to look for and how many plots to return at most."""

    q: str = Field(
        min_length=1,
        max_length=100,
        description="Text to find (case-insensitive, anywhere in the field): a plot id or "
        "cadastral number; planners also find plots by resident",
    )
    limit: int = Field(10, ge=1, le=MAX_RESULTS, description="Plots to return (1..50)")


@dataclass(frozen=True)
class SearchHit:
    """One plot found: its id, what matched, its status and where it is.

    Attributes
    ----------
    plot_id, status : str
    field : str
        The field that matched (``plot_id``, ``cadastre`` or ``resident``).
    text : str
        That field's value.
    exact : bool
        Whether the whole value equals the query (ignoring case and spaces).
    bbox : list of float or None
        ``[west, south, east, north]`` in WGS84.
    geometry : dict or None
        The plot's outline as GeoJSON (WGS84), for highlighting.
    """

    plot_id: str
    status: str
    field: str
    text: str
    exact: bool
    bbox: list[float] | None
    geometry: dict[str, Any] | None


def searchable_fields(view: PlotView) -> tuple[str, ...]:
    """The fields of :data:`SEARCH_FIELDS` that ``view`` may see (resident: staff only)."""
    return tuple(name for name in SEARCH_FIELDS if name in view.fields)


def parse_search(params: Mapping[str, Any]) -> SearchQuery:
    """A :class:`SearchQuery` from query parameters; raises ``QueryError``."""
    query: SearchQuery = parse_model(SearchQuery, params)
    return query


def _norm(values: pd.Series) -> pd.Series:
    return values.fillna("").astype(str).str.casefold().str.replace(r"\s+", "", regex=True)


def _matches(frame: pd.DataFrame, fields: tuple[str, ...], needle: str) -> pd.DataFrame:
    """Rows matching ``needle`` in any of ``fields``, with the first matching field and rank."""
    field = np.full(len(frame), "", dtype=object)
    exact = np.zeros(len(frame), dtype=bool)
    for name in reversed(fields):  # earlier fields win: overwrite with them last
        text = _norm(frame[name])
        hit = text.str.contains(needle, regex=False).to_numpy()
        field[hit] = name
        exact[hit] = (text == needle).to_numpy()[hit]
    found = frame.assign(_field=field, _exact=exact)
    found = found[found["_field"] != ""]
    # exact matches first, then by field (id before cadastre before resident), then by id
    order = {name: i for i, name in enumerate(fields)}
    return found.assign(_rank=found["_field"].map(order)).sort_values(
        ["_exact", "_rank", "plot_id"], ascending=[False, True, True], kind="stable"
    )


def find_plots(
    store: Store, query: SearchQuery, *, role: str | None = None, user: str | None = None
) -> list[SearchHit]:
    """Plots whose id, cadastral number (or, for staff, resident) contains ``query.q``.

    Parameters
    ----------
    store : Store
        The zone store.
    query : SearchQuery
        The validated text and limit.
    role, user : str, optional
        Who asks; :func:`planner.visibility.plot_view` decides the plots and fields searched.

    Returns
    -------
    list of SearchHit
        Exact matches first, then by field and id; at most ``query.limit``.
    """
    view = plot_view(role, user)
    needle = "".join(query.q.split()).casefold()
    if not needle:
        return []
    fields = searchable_fields(view)
    frame = store.read("plots", where=view.where())
    found = _matches(frame, fields, needle).head(query.limit)
    if found.empty:
        return []
    geoms = to_geojson_geometries(found.geometry.values)
    bounds = [_bbox(g) for g in geoms]
    return [
        SearchHit(
            plot_id=str(row["plot_id"]),
            status=str(row["status"]),
            field=str(row["_field"]),
            text=str(row[row["_field"]]),
            exact=bool(row["_exact"]),
            bbox=box,
            geometry=geom,
        )
        for row, geom, box in zip(found.to_dict("records"), geoms, bounds)
    ]


def _bbox(geometry: dict[str, Any] | None) -> list[float] | None:
    if not geometry:
        return None
    return [float(v) for v in shapely.geometry.shape(geometry).bounds]
