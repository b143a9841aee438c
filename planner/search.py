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

import shapely
import shapely.geometry
from pydantic import Field

from geo.i18n import N_
from geo.store import Store
from geo.store.base import SEARCH_KEYS, Contains, search_key
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
        description=N_(
            "Text to find, case and spaces ignored: the beginning of a plot id or "
            "cadastral number; planners also find plots by resident (anywhere in the name)"
        ),
    )
    limit: int = Field(10, ge=1, le=MAX_RESULTS, description=N_("Plots to return (1..50)"))


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


def find_plots(
    store: Store, query: SearchQuery, *, role: str | None = None, user: str | None = None
) -> list[SearchHit]:
    """Plots whose id or cadastral number starts with ``query.q`` (or, for staff, whose
    resident holds it), case and spaces ignored.

    Ids and cadastral numbers are looked up in the store's search-key index
    (:meth:`geo.store.Store.find`), so a search costs the same at a million plots; the
    resident is a scan of that one column in the database, for staff only.

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
        Exact matches first, then by field (id, cadastral number, resident), then by the
        matched text and id; at most ``query.limit``.
    """
    view = plot_view(role, user)
    needle = search_key(query.q)
    if not needle:
        return []
    where = view.where() or {}
    found: list[tuple[tuple[bool, int, str, str], str, dict[str, Any]]] = []
    for rank, name in enumerate(searchable_fields(view)):
        if name in SEARCH_KEYS["plots"]:
            rows = store.find("plots", name, needle, where=where, limit=query.limit)
        else:
            rows = store.read("plots", where={**where, name: Contains(needle)}, limit=query.limit)
        for record in rows.to_dict("records"):
            row = {str(k): v for k, v in record.items()}
            key = search_key(row[name])
            found.append(((key != needle, rank, key, str(row["plot_id"])), name, row))
    found.sort(key=lambda item: item[0])
    hits: list[tuple[str, dict[str, Any], bool]] = []
    seen: set[str] = set()
    for order, field, row in found:  # a plot once, by its best match
        if order[3] not in seen and len(hits) < query.limit:
            seen.add(order[3])
            hits.append((field, row, not order[0]))
    geoms = to_geojson_geometries([row["geometry"] for _, row, _ in hits], epsg=store.epsg)
    return [
        SearchHit(
            plot_id=str(row["plot_id"]),
            status=str(row["status"]),
            field=name,
            text=str(row[name]),
            exact=exact,
            bbox=_bbox(geom),
            geometry=geom,
        )
        for (name, row, exact), geom in zip(hits, geoms)
    ]


def _bbox(geometry: dict[str, Any] | None) -> list[float] | None:
    if not geometry:
        return None
    return [float(v) for v in shapely.geometry.shape(geometry).bounds]
