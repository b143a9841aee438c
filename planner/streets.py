"""Street layouts for subdivision: a generated spine-and-local grid, existing roads, rights of
way and the frontage a plot has on them.

Generated streets live in the area's own frame (:class:`Frame`): x along the long side of its
oriented bounding box. The spine runs along x, local streets run across it (along y) at the
chosen spacing, and a connector joins the grid to the nearest gate or existing road.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

__all__ = [
    "ROAD_ROW_M",
    "FRONTAGE_TOLERANCE_M",
    "Frame",
    "StreetGrid",
    "Access",
    "generate_streets",
    "existing_streets",
    "rights_of_way",
    "frontage",
    "access_point",
]

#: Right-of-way width (m) assumed for existing roads, which store no width, by class.
ROAD_ROW_M: dict[str, float] = {"arterial": 40.0, "collector": 30.0, "local": 20.0, "access": 15.0}
#: A plot boundary this far beyond the right-of-way edge still counts as fronting it
#: (plots are cut from land outside the right of way, so their edge lies on it up to rounding).
FRONTAGE_TOLERANCE_M = 0.5
_COLUMNS = ["street_id", "role", "row_m", "existing", "geometry"]


@dataclass(frozen=True)
class Frame:
    """A rotation about ``origin`` that turns the area's long side parallel to x."""

    angle: float
    origin: tuple[float, float]

    @classmethod
    def of(cls, area: Any) -> Frame:
        """The frame of ``area``: the direction of the longest edge of its oriented envelope."""
        ring = np.asarray(shapely.get_coordinates(shapely.oriented_envelope(area)))[:5]
        edges = np.diff(ring, axis=0)
        longest = edges[int(np.argmax(np.hypot(edges[:, 0], edges[:, 1])))]
        angle = math.atan2(longest[1], longest[0])
        # Keep the angle within ±90° so "up" in the frame stays roughly north.
        if angle > math.pi / 2:
            angle -= math.pi
        elif angle <= -math.pi / 2:
            angle += math.pi
        centre = shapely.centroid(area)
        return cls(angle, (float(centre.x), float(centre.y)))

    def _rotate(self, geoms: Any, angle: float) -> Any:
        cos, sin = math.cos(angle), math.sin(angle)
        ox, oy = self.origin

        def turn(xy: np.ndarray) -> np.ndarray:
            x, y = xy[:, 0] - ox, xy[:, 1] - oy
            return np.column_stack([ox + cos * x - sin * y, oy + sin * x + cos * y])

        return shapely.transform(geoms, turn)

    def to_local(self, geoms: Any) -> Any:
        """World (working CRS) geometries into the frame."""
        return self._rotate(geoms, -self.angle)

    def to_world(self, geoms: Any) -> Any:
        """Frame geometries back into the working CRS."""
        return self._rotate(geoms, self.angle)


@dataclass(frozen=True)
class StreetGrid:
    """Generated streets in the area's frame and the positions the strip method cuts by.

    Attributes
    ----------
    streets : GeoDataFrame
        ``street_id``, ``role`` (spine, local, cross, connector), ``row_m``, ``existing``
        (False) and the centrelines, in the frame.
    local_x : ndarray
        x of every local street (ascending).
    cross_y : ndarray
        y of the spine and every cross street (ascending).
    """

    streets: gpd.GeoDataFrame
    local_x: np.ndarray
    cross_y: np.ndarray


def _frame_of(rows: list[dict[str, Any]], crs: Any) -> gpd.GeoDataFrame:
    """Street rows as a frame in ``crs`` (None: a site's local frame)."""
    if not rows:
        return gpd.GeoDataFrame({c: [] for c in _COLUMNS[:-1]}, geometry=[], crs=crs)
    return gpd.GeoDataFrame(pd.DataFrame(rows), geometry="geometry", crs=crs)


def _positions(
    start: float, stop: float, anchor: float, spacing: float, end_gap: float
) -> np.ndarray:
    """Street positions through ``anchor``, at most ``spacing`` apart, the outermost no more
    than ``end_gap`` from ``start`` and ``stop``."""
    left = max(0.0, anchor - start - end_gap)
    right = max(0.0, stop - anchor - end_gap)
    # The tolerance keeps float noise from adding a street when a span is a whole multiple.
    n_left, n_right = math.ceil(left / spacing - 1e-6), math.ceil(right / spacing - 1e-6)
    lefts = anchor - np.arange(1, n_left + 1) * (left / n_left) if n_left else np.zeros(0)
    rights = anchor + np.arange(1, n_right + 1) * (right / n_right) if n_right else np.zeros(0)
    return np.sort(np.concatenate([lefts, [anchor], rights]))


def _spine_y(area: Any, margin: float) -> float:
    """The y (frame) of the longest chord along x, preferring chords a plot depth inside."""
    minx, miny, maxx, maxy = area.bounds
    lo, hi = miny + margin, maxy - margin
    if hi <= lo:
        lo = hi = (miny + maxy) / 2
    ys = np.linspace(lo, hi, 65)
    chords = shapely.length(
        shapely.intersection(
            shapely.linestrings(
                np.stack(
                    [
                        np.column_stack([np.full_like(ys, minx - 1), ys]),
                        np.column_stack([np.full_like(ys, maxx + 1), ys]),
                    ],
                    axis=1,
                )
            ),
            area,
        )
    )
    centre = (miny + maxy) / 2
    # Among chords within 5% of the longest, the one nearest the middle.
    good = chords >= chords.max() * 0.95
    return float(ys[good][np.argmin(np.abs(ys[good] - centre))])


def generate_streets(
    area: Any,
    *,
    depth_m: float,
    row_m: float,
    spine_row_m: float,
    block_m: float,
    access: Any | None,
    avoid: Any | None = None,
) -> StreetGrid:
    """A spine along the area's long side, local streets across it and a connector.

    Parameters
    ----------
    area : Polygon
        The area, already in its frame.
    depth_m : float
        Plot depth: local streets are ``2 * depth_m + row_m`` apart at most and the outermost
        lies at most ``depth_m + row_m / 2`` from the area's ends.
    row_m, spine_row_m : float
        Right-of-way widths of local streets and of the spine (and cross streets).
    block_m : float
        Longest run of a local street between the spine and a cross street parallel to it.
    access : Point or None
        Where the grid joins the road network (frame), e.g. a gate; None: no connector.
    avoid : geometry or None
        Land no street may cross (protection zones).

    Returns
    -------
    StreetGrid
        The longest connected network, the pieces that could be linked to it and the
        connector to the access point.
    """
    minx, miny, maxx, maxy = area.bounds
    spacing = 2 * depth_m + row_m
    anchor_x = float(np.clip(access.x, minx, maxx)) if access is not None else (minx + maxx) / 2
    local_x = _positions(minx, maxx, anchor_x, spacing, depth_m + row_m / 2)
    spine = _spine_y(area, depth_m + spine_row_m / 2)
    cross_y = _positions(miny, maxy, spine, block_m + spine_row_m, block_m / 2 + depth_m)
    pad = 1.0
    lines = [
        ("local", row_m, shapely.linestrings([[x, miny - pad], [x, maxy + pad]])) for x in local_x
    ]
    lines += [
        (
            "spine" if y == spine else "cross",
            spine_row_m,
            shapely.linestrings([[minx - pad, y], [maxx + pad, y]]),
        )
        for y in cross_y
    ]
    roles = np.array([r for r, _, _ in lines])
    widths = np.array([w for _, w, _ in lines])
    clipped = shapely.intersection(np.array([g for _, _, g in lines], dtype=object), area)
    if avoid is not None and not shapely.is_empty(avoid):
        clipped = shapely.difference(clipped, avoid)
    parts, index = shapely.get_parts(clipped, return_index=True)
    parts = shapely.line_merge(parts)
    keep = shapely.length(parts) > 1.0
    parts, roles, widths = parts[keep], roles[index[keep]], widths[index[keep]]
    parts, roles, widths = _join(
        parts, roles, widths, area=area, avoid=avoid, row_m=row_m, max_link_m=spacing
    )
    if access is not None and len(parts):
        connector = shapely.shortest_line(access, shapely.union_all(parts))
        if shapely.length(connector) > 1.0:
            parts = np.append(parts, connector)
            roles = np.append(roles, "connector")
            widths = np.append(widths, row_m)
    rows = [
        {
            "street_id": f"S-{i + 1:03d}",
            "role": str(r),
            "row_m": float(w),
            "existing": False,
            "geometry": g,
        }
        for i, (r, w, g) in enumerate(zip(roles, widths, parts))
    ]
    return StreetGrid(_frame_of(rows, None), local_x, cross_y)


def _components(parts: np.ndarray) -> np.ndarray:
    """Label of the connected street network each piece belongs to."""
    n = len(parts)
    tree = shapely.STRtree(parts)
    a, b = tree.query(shapely.buffer(parts, 0.01), predicate="intersects")
    _, labels = connected_components(
        coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n)), directed=False
    )
    return labels


def _join(
    parts: np.ndarray,
    roles: np.ndarray,
    widths: np.ndarray,
    *,
    area: Any,
    avoid: Any | None,
    row_m: float,
    max_link_m: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The longest street network, with every other piece joined to it by a straight link
    (inside the area, clear of ``avoid``, at most ``max_link_m`` long) or dropped.

    Concave outlines and holes cut cross streets into pieces the spine never reaches.
    """
    if not len(parts):
        return parts, roles, widths
    labels = _components(parts)
    lengths = np.bincount(labels, weights=shapely.length(parts))
    main = int(np.argmax(lengths))
    network = shapely.union_all(parts[labels == main])
    joined = labels == main
    inside = shapely.buffer(area, 0.5)
    links = []
    others = [k for k in np.argsort(-lengths) if k != main]
    for label in others:  # few pieces: one shortest line each
        piece = shapely.union_all(parts[labels == label])
        link = shapely.shortest_line(piece, network)
        ok = (
            shapely.length(link) <= max_link_m
            and shapely.within(link, inside)
            and (avoid is None or not shapely.intersects(link, avoid))
        )
        if ok:
            joined |= labels == label
            network = shapely.union_all([network, piece, link])
            if shapely.length(link) > 0.01:
                links.append(link)
    parts, roles, widths = parts[joined], roles[joined], widths[joined]
    return (
        np.append(parts, np.array(links, dtype=object)),
        np.append(roles, ["connector"] * len(links)),
        np.append(widths, [row_m] * len(links)),
    )


@dataclass(frozen=True)
class Access:
    """Where new streets join the network: a gate, or the nearest point of a road."""

    point: Any
    kind: str
    asset_id: str

    def __str__(self) -> str:
        return f"{self.kind} {self.asset_id}"


def access_point(
    area: Any, gates: gpd.GeoDataFrame | None, roads: gpd.GeoDataFrame | None
) -> Access | None:
    """The nearest gate, or the nearest point of an existing road, to ``area``.

    Returns
    -------
    Access or None
        None when there is neither gate nor road. A gate wins a tie with a road (it is
        where the zone is entered).
    """
    best: tuple[float, int, Access] | None = None
    for rank, (frame, kind) in enumerate(((gates, "gate"), (roads, "road"))):
        if frame is None or not len(frame):
            continue
        geoms = np.asarray(frame.geometry.values, dtype=object)
        dist = shapely.distance(geoms, area)
        i = int(np.argmin(dist))
        point = shapely.get_point(shapely.shortest_line(geoms[i], area), 0)
        candidate = (
            round(float(dist[i]), 3),
            rank,
            Access(point, kind, str(frame["asset_id"].iloc[i])),
        )
        if best is None or candidate[:2] < best[:2]:
            best = candidate
    return best[2] if best else None


def existing_streets(
    roads: gpd.GeoDataFrame | None, area: Any, *, also: tuple[str, ...] = ()
) -> gpd.GeoDataFrame:
    """Existing roads whose right of way reaches into ``area`` (and those named in ``also``),
    with their assumed ``row_m``."""
    if roads is None or not len(roads):
        return _frame_of([], None if roads is None else roads.crs)
    row = roads["class"].map(ROAD_ROW_M).fillna(ROAD_ROW_M["local"]).to_numpy(dtype=float)
    geoms = np.asarray(roads.geometry.values, dtype=object)
    near = (
        # types-shapely says distance: float; it is a ufunc argument, so one per road works
        shapely.dwithin(geoms, area, row / 2 + FRONTAGE_TOLERANCE_M)  # type: ignore[call-overload]
        | roads["asset_id"].isin(also).to_numpy()
    )
    return _frame_of(
        [
            {
                "street_id": str(k),
                "role": "existing",
                "row_m": float(w),
                "existing": True,
                "geometry": g,
            }
            for k, w, g in zip(roads["asset_id"].to_numpy()[near], row[near], geoms[near])
        ],
        roads.crs,
    )


def rights_of_way(streets: gpd.GeoDataFrame) -> Any:
    """The land the streets take: each centreline widened by half its right of way."""
    if not len(streets):
        return shapely.Polygon()
    geoms = np.asarray(streets.geometry.values, dtype=object)
    return shapely.union_all(
        shapely.buffer(
            geoms, streets["row_m"].to_numpy(dtype=float) / 2, cap_style="flat", join_style="mitre"
        )
    )


def frontage(
    plots: np.ndarray, streets: gpd.GeoDataFrame, tolerance_m: float = FRONTAGE_TOLERANCE_M
) -> tuple[np.ndarray, np.ndarray]:
    """How long each plot's boundary runs within one street's right-of-way half-width.

    Parameters
    ----------
    plots : array of Polygon
    streets : GeoDataFrame
        Centrelines with ``row_m``.
    tolerance_m : float
        Added to the half-width (digitising and rounding).

    Returns
    -------
    (length_m, street) : ndarray, ndarray
        Per plot the longest frontage on any single street (m) and that street's row in
        ``streets`` (-1 when none).
    """
    n = len(plots)
    best = np.zeros(n)
    which = np.full(n, -1)
    if n == 0 or not len(streets):
        return best, which
    geoms = np.asarray(streets.geometry.values, dtype=object)
    reach = shapely.buffer(geoms, streets["row_m"].to_numpy(dtype=float) / 2 + tolerance_m)
    tree = shapely.STRtree(reach)
    p, s = tree.query(plots, predicate="intersects")
    if not len(p):
        return best, which
    lengths = shapely.length(shapely.intersection(shapely.boundary(plots[p]), reach[s]))
    order = np.lexsort((lengths, p))  # within each plot, longest last
    last = np.r_[p[order][1:] != p[order][:-1], True]
    best[p[order][last]] = lengths[order][last]
    which[p[order][last]] = s[order][last]
    return best, which
