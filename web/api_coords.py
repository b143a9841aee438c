"""Typed parcel corners through the JSON API: read them into a WGS84 outline, or write an
outline's corners in a chosen system. Nothing is stored; the planner's workspace then checks
and saves the outline as a drawn one (/api/check, /api/plots)."""

from __future__ import annotations

from typing import Literal

from flask_babel import gettext
from pydantic import BaseModel, Field

from geo.i18n import N_
from geo.store import Invalid
from geo.validate import Problem
from planner import coordinates
from planner.catalogue import to_geojson_geometries
from web import deps
from web.api import endpoint
from web.api_edit import PolygonJSON, _In, _polygon

System = Literal[tuple(coordinates.SYSTEMS)]  # type: ignore[valid-type]


class CornersIn(_In):
    """Corners typed by a planner, one ``x y`` pair a line."""

    text: str = Field(max_length=100_000, description=N_("One corner a line: two numbers"))
    crs: System = Field(  # type: ignore[valid-type]
        description=N_(
            "EPSG:4326 (longitude latitude, degrees) or EPSG:32643 (easting northing, m)"
        )
    )


class CornersOut(BaseModel):
    """The typed corners as a WGS84 GeoJSON Polygon."""

    geometry: dict = Field(description=N_("GeoJSON Polygon, WGS84"))
    corners: int = Field(description="How many corners were read")


class OutlineIn(_In):
    """An outline whose corners to write out."""

    geometry: PolygonJSON = Field(description=N_("GeoJSON Polygon, WGS84"))
    crs: System = Field(description=N_("The system to write the corners in"))  # type: ignore[valid-type]


class OutlineText(BaseModel):
    """The corners as text, one a line."""

    text: str


@endpoint(
    "post",
    "/coordinates",
    summary=N_("Read typed corners into an outline"),
    tag="planning",
    body=CornersIn,
    response=CornersOut,
    roles=("planner",),
    description=N_(
        "Nothing is stored. 422 names each line that is not two numbers, or whose "
        "numbers are not coordinates of the chosen system (latitude first, or degrees "
        "given as metres, are named as such)."
    ),
)
def read_corners(body: CornersIn):
    try:
        polygon = coordinates.parse_corners(body.text, body.crs, deps.get_store().epsg)
    except coordinates.CoordinateError as err:
        raise Invalid(
            [Problem(None, None, "text", p.message(gettext)) for p in err.problems[:50]]
        ) from None
    return {
        "geometry": to_geojson_geometries([polygon], epsg=deps.get_store().epsg, decimals=9)[0],
        "corners": len(polygon.exterior.coords) - 1,
    }


@endpoint(
    "post",
    "/coordinates/text",
    summary=N_("Write an outline's corners in a coordinate system"),
    tag="planning",
    body=OutlineIn,
    response=OutlineText,
    roles=("planner",),
)
def write_corners(body: OutlineIn):
    return {
        "text": coordinates.format_corners(_polygon(body.geometry), body.crs, deps.get_store().epsg)
    }
