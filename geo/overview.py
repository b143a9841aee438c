"""Plot overview: plots too small to see at a zoom merged per status into generalised blocks.

At zoom ``z`` a plot whose bounding box spans fewer than :data:`MERGE_PIXELS` screen pixels
(256-pixel tiles) cannot show its status: its 1-pixel outline on both sides leaves at most
one pixel of fill, and the map's click tolerance (6 pixels) cannot tell it from its
neighbours. Tiles of zooms :data:`MIN_LEVEL`..:data:`MAX_LEVEL` therefore carry such plots
not one by one but as *blocks*: per status, the union of its small plots, closed over gaps
narrower than about one and a half pixels, simplified and clipped to a fixed square cell
(:data:`CELL_PIXELS` pixels at that level) so neighbouring cells tile seamlessly; each block
counts the plots it covers (one lying across a cell edge counts in both cells). Plots big enough to see stay single
features with their ``plot_id``.

The blocks are kept in the store (``plot_overview``) and maintained by the store's write
path: a write re-merges only the cells it touches (:func:`refresh`). Sizes are compared in
the store's CRS against :func:`min_size`, a length fixed per store CRS, so the tile query,
the blocks and a click all sort every plot the same way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

import numpy as np
import shapely
from pyproj import CRS

from geo.crs import transformer
from geo.tiles import HALF_WORLD, WEB_MERCATOR_EPSG

#: Below this many screen pixels across (its box's longer side) a plot is merged into a block.
MERGE_PIXELS = 3.0
#: The zooms that have blocks; tiles further out use MIN_LEVEL's, nearer ones none.
MIN_LEVEL = 12
MAX_LEVEL = 14
LEVELS: tuple[int, ...] = tuple(range(MIN_LEVEL, MAX_LEVEL + 1))
#: A block cell's side in screen pixels at its level (64 cells per 256-pixel tile).
CELL_PIXELS = 32
#: Gaps narrower than twice this (pixels) between plots of one status are filled.
CLOSE_PIXELS = 0.75
#: Douglas-Peucker tolerance of a block outline, pixels.
SIMPLIFY_PIXELS = 0.5
TILE_PIXELS = 256

Box = tuple[float, float, float, float]
Cell = tuple[int, int]


@dataclass(frozen=True)
class Block:
    """The small plots of one status in one cell of one level, as one (multi)polygon."""

    level: int
    cx: int
    cy: int
    status: str
    plots: int
    geometry: shapely.Geometry


def level_of(z: int) -> int | None:
    """The block level tiles of zoom ``z`` use (None: every plot is a single feature)."""
    if z > MAX_LEVEL:
        return None
    return max(z, MIN_LEVEL)


@cache
def store_scale(epsg: int) -> float:
    """Store CRS units per Web Mercator metre at the centre of the CRS's area of use (about
    cos(latitude) for a metric CRS): fixed per CRS, so every size test of a store agrees."""
    crs = CRS.from_epsg(epsg)
    area = crs.area_of_use
    lon, lat = (0.0, 0.0) if area is None else ((area.west + area.east) / 2, (area.south + area.north) / 2)
    lat = max(-80.0, min(80.0, lat))
    to_store = transformer(4326, epsg)
    to_merc = transformer(4326, WEB_MERCATOR_EPSG)
    step = 0.01
    (sx0, sx1), (sy0, sy1) = to_store.transform([lon, lon], [lat - step, lat + step])
    (mx0, mx1), (my0, my1) = to_merc.transform([lon, lon], [lat - step, lat + step])
    return float(math.hypot(sx1 - sx0, sy1 - sy0) / math.hypot(mx1 - mx0, my1 - my0))


def pixel(level: int, epsg: int) -> float:
    """One screen pixel of zoom ``level`` in store CRS units."""
    return 2 * HALF_WORLD / (TILE_PIXELS * (1 << level)) * store_scale(epsg)


def min_size(level: int, epsg: int) -> float:
    """The box side (store units, rounded to a millimetre) from which a plot is drawn alone
    at ``level``; the SQL of both backends takes it as a literal."""
    return round(MERGE_PIXELS * pixel(level, epsg), 3)


def cell_size(level: int, epsg: int) -> float:
    """A block cell's side at ``level``, store units."""
    return CELL_PIXELS * pixel(level, epsg)


def margin(level: int, epsg: int) -> float:
    """How far beyond its cell a plot still shapes a cell's blocks (the closing reach)."""
    return 2 * CLOSE_PIXELS * pixel(level, epsg)


def cell_range(level: int, epsg: int, box: Box) -> tuple[int, int, int, int]:
    """``(cx0, cy0, cx1, cy1)``: the cells (inclusive) a box in store units meets."""
    side = cell_size(level, epsg)
    return (
        math.floor(box[0] / side),
        math.floor(box[1] / side),
        math.floor(box[2] / side),
        math.floor(box[3] / side),
    )


def cells_touched(level: int, epsg: int, boxes: np.ndarray) -> set[Cell]:
    """The cells whose blocks the plots with these bounds (``n x 4``) shape."""
    if len(boxes) == 0:
        return set()
    side, grow = cell_size(level, epsg), margin(level, epsg)
    b = np.asarray(boxes, dtype=np.float64)
    b = b[~np.isnan(b).any(axis=1)]
    lo = np.floor((b[:, :2] - grow) / side).astype(np.int64)
    hi = np.floor((b[:, 2:] + grow) / side).astype(np.int64)
    out: set[Cell] = set()
    single = (lo == hi).all(axis=1)
    out.update(zip(lo[single, 0].tolist(), lo[single, 1].tolist()))
    for (x0, y0), (x1, y1) in zip(lo[~single].tolist(), hi[~single].tolist()):
        out.update((x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1))
    return out


def blocks(
    level: int,
    epsg: int,
    cells: Iterable[Cell],
    statuses: Sequence[str],
    geoms: np.ndarray,
) -> list[Block]:
    """The blocks of ``cells`` from the small plots near them (``statuses`` and ``geoms``
    aligned; every small plot within :func:`margin` of each cell must be among them)."""
    geoms = np.asarray(geoms, dtype=object)
    status = np.asarray(statuses, dtype=object)
    drawn = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms)) if len(geoms) else []
    geoms, status = geoms[drawn], status[drawn]
    wanted = set(cells)
    if not len(geoms) or not wanted:
        return []
    side, px, grow = cell_size(level, epsg), pixel(level, epsg), margin(level, epsg)
    bounds = shapely.bounds(geoms)
    # every (cell, plot) pair where the plot lies within the closing reach of the cell
    lo = np.floor((bounds[:, :2] - grow) / side).astype(np.int64)
    hi = np.floor((bounds[:, 2:] + grow) / side).astype(np.int64)
    pair_x, pair_y, pair_i = [lo[:, 0]], [lo[:, 1]], [np.arange(len(geoms))]
    for dx in range(int((hi - lo)[:, 0].max()) + 1):
        for dy in range(int((hi - lo)[:, 1].max()) + 1):
            if dx == dy == 0:
                continue
            more = np.flatnonzero((lo[:, 0] + dx <= hi[:, 0]) & (lo[:, 1] + dy <= hi[:, 1]))
            pair_x.append(lo[more, 0] + dx)
            pair_y.append(lo[more, 1] + dy)
            pair_i.append(more)
    px_, py_, pi_ = (np.concatenate(v) for v in (pair_x, pair_y, pair_i))
    order = np.lexsort((pi_, py_, px_))
    px_, py_, pi_ = px_[order], py_[order], pi_[order]
    starts = np.flatnonzero(np.r_[True, (np.diff(px_) != 0) | (np.diff(py_) != 0)])
    ends = np.r_[starts[1:], len(pi_)]
    grown = np.full(len(geoms), None, dtype=object)
    out: list[Block] = []
    for s, e in zip(starts.tolist(), ends.tolist()):
        cx, cy = int(px_[s]), int(py_[s])
        if (cx, cy) not in wanted:
            continue
        near = pi_[s:e]
        todo = near[shapely.is_missing(grown[near])]
        if len(todo):
            grown[todo] = shapely.buffer(geoms[todo], CLOSE_PIXELS * px, join_style="mitre")
        x0, y0 = cx * side, cy * side
        square = shapely.box(x0, y0, x0 + side, y0 + side)
        names = status[near]
        for name in sorted(set(names.tolist())):
            mine = names == name
            merged = shapely.buffer(
                shapely.union_all(grown[near[mine]]), -CLOSE_PIXELS * px, join_style="mitre"
            )
            merged = _polygons(
                shapely.simplify(
                    shapely.intersection(merged, square),
                    SIMPLIFY_PIXELS * px,
                    preserve_topology=True,
                )
            )
            if merged is None:
                continue
            count = int(shapely.intersects(geoms[near[mine]], square).sum())
            out.append(Block(level, cx, cy, str(name), count, merged))
    return out


def _polygons(geom: shapely.Geometry) -> shapely.Geometry | None:
    """The areal part of a geometry (clipping leaves lines and points on cell edges)."""
    if geom is None or geom.is_empty:
        return None
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [g for g in getattr(geom, "geoms", []) if g.geom_type in ("Polygon", "MultiPolygon")]
    if not parts:
        return None
    return shapely.union_all(parts)


class OverviewTable(Protocol):
    """What :func:`refresh` needs of a backend, inside the writing transaction."""

    epsg: int

    def small_plots(self, level: int, box: Box | None) -> tuple[list[str], np.ndarray]:
        """Status and geometry of the plots under :func:`min_size` at ``level`` whose box
        meets ``box`` (every such plot when None), sized the way the tile query sizes them."""
        ...

    def replace(self, level: int, cells: set[Cell] | None, rows: list[Block]) -> None:
        """Drop the blocks of ``cells`` of ``level`` (every cell when None), write ``rows``."""
        ...


def refresh(table: OverviewTable, boxes: np.ndarray | None) -> int:
    """Re-merge the cells that plots with these bounds (``n x 4``, store units: the old and
    new boxes of what a write changed) touch, at every level; ``boxes`` None rebuilds every
    cell. Returns the number of blocks written."""
    written = 0
    for level in LEVELS:
        if boxes is None:
            statuses, geoms = table.small_plots(level, None)
            bounds = shapely.bounds(geoms) if len(geoms) else np.empty((0, 4))
            cells = cells_touched(level, table.epsg, bounds)
            rows = blocks(level, table.epsg, cells, statuses, geoms)
            table.replace(level, None, rows)
            written += len(rows)
            continue
        cells = cells_touched(level, table.epsg, boxes)
        if not cells:
            continue
        side, grow = cell_size(level, table.epsg), margin(level, table.epsg)
        xs, ys = [c[0] for c in cells], [c[1] for c in cells]
        box = (
            min(xs) * side - grow,
            min(ys) * side - grow,
            (max(xs) + 1) * side + grow,
            (max(ys) + 1) * side + grow,
        )
        statuses, geoms = table.small_plots(level, box)
        rows = blocks(level, table.epsg, cells, statuses, geoms)
        table.replace(level, cells, rows)
        written += len(rows)
    return written


def block_key(level: int, cx: int, cy: int, status: str) -> str:
    """A block's text key (its MVT feature id is :func:`geo.tiles.feature_ids` of it)."""
    return f"block:{level}:{cx}:{cy}:{status}"


def statuses_of(where: Mapping[str, Any] | None) -> tuple[bool, list[str] | None]:
    """Whether a plots ``where`` filter can be applied to blocks (it filters on status
    alone), and the statuses it keeps (None: every one)."""
    if not where:
        return True, None
    if set(where) != {"status"}:
        return False, None
    value = where["status"]
    return True, [value] if isinstance(value, str) else [str(v) for v in value]
