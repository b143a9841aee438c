"""Typed parcel corners: read lines of coordinates (WGS84 or UTM 43N) into a polygon, and back."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import shapely

from geo.crs import WGS84_EPSG, transformer
from geo.i18n import N_

Translate = Callable[[str], str]
#: The systems a planner may type corners in: WGS84 degrees (longitude, latitude, as GeoJSON
#: and GPS give them) and UTM zone 43N metres (easting, northing, as the zone's surveys do).
SYSTEMS: dict[str, int] = {"EPSG:4326": WGS84_EPSG, "EPSG:32643": 32643}
MAX_CORNERS = 2000
#: Where UTM 43N coordinates make sense (false easting 500 km, northern hemisphere).
UTM_EASTING = (100_000.0, 900_000.0)
UTM_NORTHING = (0.0, 9_330_000.0)
#: The longitudes UTM zone 43N covers (72°E–78°E), with a margin a zone's edge may need.
ZONE_LON = (69.0, 81.0)
_SPLIT = re.compile(r",\s+|[;\s]+")


@dataclass(frozen=True)
class CoordinateProblem:
    """One line that cannot be read: its number (1-based, 0 for the whole text) and why."""

    line: int
    template: str
    values: tuple[tuple[str, str], ...] = ()

    def message(self, translate: Translate | None = None) -> str:
        """The problem in words, translated first and formatted after."""
        text = (translate or (lambda s: s))(self.template)
        return text.format(line=self.line, **dict(self.values))


class CoordinateError(ValueError):
    """Typed coordinates that do not make a polygon; ``problems`` names each line."""

    def __init__(self, problems: list[CoordinateProblem]):
        super().__init__("; ".join(p.message() for p in problems))
        self.problems = problems


def _number(token: str) -> float | None:
    """A typed number: a decimal point or a decimal comma; None when it is not one."""
    try:
        value = float(token.replace(",", "."))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _tokens(line: str) -> list[str]:
    """The numbers of a line: split on spaces, tabs, semicolons or ", ", else on one comma."""
    parts = [p for p in _SPLIT.split(line.strip()) if p]
    if len(parts) == 1 and parts[0].count(",") == 1:
        parts = parts[0].split(",")
    return parts


def _check_range(line: int, x: float, y: float, epsg: int) -> CoordinateProblem | None:
    shown = (("x", f"{x:g}"), ("y", f"{y:g}"))
    if epsg == WGS84_EPSG:
        if ZONE_LON[0] <= y <= ZONE_LON[1] and not ZONE_LON[0] <= x <= ZONE_LON[1]:
            return CoordinateProblem(
                line,
                N_("line {line}: {x} {y} looks like latitude, longitude; give longitude first"),
                shown,
            )
        if not (-180 <= x <= 180 and -90 <= y <= 90):
            return CoordinateProblem(
                line,
                N_("line {line}: {x} {y} is not a longitude (−180…180) and a latitude (−90…90)"),
                shown,
            )
        if not ZONE_LON[0] <= x <= ZONE_LON[1]:
            return CoordinateProblem(
                line, N_("line {line}: longitude {x} is far outside UTM zone 43N (72–78° E)"), shown
            )
        return None
    if UTM_EASTING[0] <= y <= UTM_EASTING[1] and x > UTM_EASTING[1]:
        return CoordinateProblem(
            line,
            N_("line {line}: {x} {y} looks like northing, easting; give easting first"),
            shown,
        )
    if not (UTM_EASTING[0] <= x <= UTM_EASTING[1] and UTM_NORTHING[0] <= y <= UTM_NORTHING[1]):
        return CoordinateProblem(
            line,
            N_(
                "line {line}: {x} {y} is not a UTM 43N easting (100000…900000 m) "
                "and northing (0…9330000 m); degrees belong to WGS84"
            ),
            shown,
        )
    return None


def _read_line(line_no: int, line: str, epsg: int) -> tuple[float, float] | CoordinateProblem:
    tokens = _tokens(line)
    if len(tokens) != 2:
        return CoordinateProblem(
            line_no,
            N_("line {line}: give two numbers (found {count}: “{text}”)"),
            (("count", str(len(tokens))), ("text", line.strip()[:60])),
        )
    x, y = (_number(t) for t in tokens)
    if x is None or y is None:
        return CoordinateProblem(
            line_no,
            N_("line {line}: “{text}” is not a number"),
            (("text", tokens[0] if x is None else tokens[1]),),
        )
    return _check_range(line_no, x, y, epsg) or (x, y)


def parse_corners(text: str, crs: str, epsg: int) -> shapely.Polygon:
    """A polygon in CRS ``epsg`` (the store's) from typed corners, one ``x y`` pair a line.

    Parameters
    ----------
    text : str
        Lines of two numbers (separated by spaces, tabs, semicolons or one comma; a decimal
        comma is read too); blank lines are skipped; the first corner need not be repeated.
    crs : str
        A key of :data:`SYSTEMS`: ``EPSG:4326`` (longitude latitude) or ``EPSG:32643``
        (easting northing, metres).
    epsg : int
        The CRS of the polygon returned (the store's).

    Returns
    -------
    shapely.Polygon
        Possibly invalid (crossing itself): the parcel check explains that in words.

    Raises
    ------
    CoordinateError
        One problem per unreadable line, or for too few or too many corners.
    """
    if crs not in SYSTEMS:
        raise CoordinateError(
            [
                CoordinateProblem(
                    0,
                    N_("unknown coordinate system {crs}; use {known}"),
                    (("crs", str(crs)), ("known", ", ".join(SYSTEMS))),
                )
            ]
        )
    system = SYSTEMS[crs]
    lines = [(i, line) for i, line in enumerate(str(text).splitlines(), 1) if line.strip()]
    if len(lines) > MAX_CORNERS:
        raise CoordinateError(
            [
                CoordinateProblem(
                    0, N_("more than {n} corners; simplify the outline"), (("n", str(MAX_CORNERS)),)
                )
            ]
        )
    read = [_read_line(i, line, system) for i, line in lines]
    problems = [r for r in read if isinstance(r, CoordinateProblem)]
    if problems:
        raise CoordinateError(problems)
    corners = [r for r in read if not isinstance(r, CoordinateProblem)]
    if len(corners) > 1 and corners[0] == corners[-1]:
        corners.pop()
    if len(set(corners)) < 3:
        raise CoordinateError(
            [
                CoordinateProblem(
                    0,
                    N_("a parcel needs at least three different corners ({n} given)"),
                    (("n", str(len(set(corners)))),),
                )
            ]
        )
    xy = np.asarray(corners, dtype=float)
    if system != epsg:
        x, y = transformer(system, epsg).transform(xy[:, 0], xy[:, 1])
        xy = np.column_stack([x, y])
    return shapely.Polygon(xy)


def format_corners(polygon: shapely.Polygon, crs: str, epsg: int) -> str:
    """The exterior corners of a polygon in CRS ``epsg`` (the store's) as lines for
    :func:`parse_corners` in system ``crs`` (degrees to 8 decimals, metres to 2; the closing
    corner left out)."""
    system = SYSTEMS[crs]
    xy = np.asarray(polygon.exterior.coords)[:-1]
    if system != epsg:
        x, y = transformer(epsg, system).transform(xy[:, 0], xy[:, 1])
        xy = np.column_stack([x, y])
    digits = 8 if system == WGS84_EPSG else 2
    return "\n".join(f"{x:.{digits}f} {y:.{digits}f}" for x, y in xy)
