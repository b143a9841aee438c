"""Plot search through the JSON API (``GET /api/search``): the map's and the catalogue's search box.

A thin adapter over :func:`planner.search.find_plots`, which asks the access policy what
the caller may find.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from pydantic import BaseModel, Field

from geo.i18n import N_
from geo.layers import PLOT_STATUSES
from planner.search import SEARCH_FIELDS, SearchQuery, find_plots
from web import deps
from web.api import Geometry, bp, endpoint
from web.auth import current_role, current_username

__all__ = ["bp", "SearchResult", "SearchResults"]


class SearchResult(BaseModel):
    """One plot found, with what matched and where it is (WGS84)."""

    plot_id: str
    status: Literal[PLOT_STATUSES]  # type: ignore[valid-type]
    field: Literal[SEARCH_FIELDS] = Field(  # type: ignore[valid-type]
        description="The field that matched ('resident' only for planners)"
    )
    text: str = Field(description="That field's value")
    exact: bool = Field(description="The whole value equals the query (case and spaces aside)")
    bbox: list[float] | None = Field(description="[west, south, east, north], WGS84")
    geometry: Geometry | None


class SearchResults(BaseModel):
    """Plots matching the query, exact matches first."""

    q: str
    results: list[SearchResult]


@endpoint(
    "get",
    "/search",
    summary=N_("Find plots by id or cadastral number (planners: also by resident)"),
    tag="plots",
    query=SearchQuery,
    response=SearchResults,
    description=N_(
        "Matches the text anywhere in the plot id or cadastral number, ignoring "
        "case and spaces; planners also search the resident. Only plots your role may see "
        "can match (never a candidate plot for the public or investors), and a field your "
        "role may not see is never searched."
    ),
)
def search_plots(query: SearchQuery) -> dict[str, Any]:
    hits = find_plots(deps.get_store(), query, role=current_role(), user=current_username())
    return {"q": query.q, "results": [dataclasses.asdict(hit) for hit in hits]}
