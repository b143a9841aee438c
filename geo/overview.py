"""Plot overview: plots too small to see at a zoom merged per status into generalised blocks.

At zoom ``z`` a plot whose bounding box spans fewer than :data:`MERGE_PIXELS` screen pixels
(256-pixel tiles) cannot show its status: its 1-pixel outline on both sides leaves at most
one pixel of fill, and the map's click tolerance (6 pixels) cannot tell it from its
neighbours. Tiles of zooms :data:`MIN_LEVEL`..:data:`MAX_LEVEL` therefore carry such plots
not one by one but as *blocks*: the plots are grouped by the fixed square cell
(:data:`CELL_PIXELS` pixels at that level) their box's centre lies in, and per cell and
status the block is the union of the :data:`SQUARE_PIXELS` squares of the cell their boxes
touch, with the number of plots. Blocks of different statuses may overlap where their
plots mix. Plots big enough to see stay single features with their ``plot_id``.

The blocks are kept in the store (``zoneplan_plot_overview``) and maintained by the store's write
path: a write re-merges only the cells it touches (:func:`refresh`). Sizes are compared in
the store's CRS against :func:`min_size`, a length fixed per store CRS, so the tile query,
the blocks and a click all sort every plot the same way.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
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
#: The side of the squares a block is drawn with, pixels. Plots of 1-3 pixels whose statuses
#: mix (the synthetic grid deals them out in turn) make finer blocks a speckle as heavy as
#: the plots: for 100k synthetic plots, the plots' own outlines merged per status (closed
#: over 1.5-pixel gaps) held 386k vertices at z12 (3.9 per plot); 4-pixel squares 363k at
#: z13, 8-pixel squares 132k. 8 pixels keeps a cell to 4 x 4 squares.
SQUARE_PIXELS = 8
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
    lon, lat = (
        (0.0, 0.0) if area is None else ((area.west + area.east) / 2, (area.south + area.north) / 2)
    )
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


@dataclass(frozen=True)
class SizeTest:
    """How one backend sizes a plot for the overview, and the one comparison with
    :func:`min_size`: in memory (:meth:`big`) and as the SQL predicate its queries and
    partial indexes use (:meth:`predicate`), from the same two definitions side by side.

    Backends measure a plot's box differently (a GeoPackage's R-tree holds 4-byte floats
    rounded outward; PostGIS stores the exact box's size), and every part of a backend (its
    tile query, its blocks, a bulk import merging blocks in memory, a click) must sort a
    plot the same way, down to the centimetre at the threshold.
    """

    #: The size of a row as an SQL expression (the box's longer side, store units).
    sql: str
    #: The same size, in memory, of plots with these exact bounds (``n x 4``).
    measure: Callable[[np.ndarray], np.ndarray]

    def big(self, level: int, epsg: int, bounds: np.ndarray) -> np.ndarray:
        """Which plots with these exact bounds (``n x 4``; NaN: none) are drawn alone at
        ``level``.

        Parameters
        ----------
        level, epsg
            The block level and the store's CRS.
        bounds
            The plots' exact bounds, store units.

        Returns
        -------
        numpy.ndarray
            One bool per plot.
        """
        size = self.measure(np.asarray(bounds, dtype=np.float64).reshape(-1, 4))
        return np.asarray(size >= min_size(level, epsg))

    def predicate(self, level: int, epsg: int) -> str:
        """:meth:`big` as an SQL predicate on a row (the threshold a number literal)."""
        return f"{self.sql} >= {min_size(level, epsg)!r}"


def cell_size(level: int, epsg: int) -> float:
    """A block cell's side at ``level``, store units."""
    return CELL_PIXELS * pixel(level, epsg)


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
    """The cells of the plots with these bounds (``n x 4``): each counts in the cell its
    box's centre lies in."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    b = b[~np.isnan(b).any(axis=1)]
    side = cell_size(level, epsg)
    centre = np.floor((b[:, :2] + b[:, 2:]) / 2 / side).astype(np.int64)
    if not len(centre):
        return set()
    # distinct cells first, as one integer each (a set of a million pairs costs ~0.35 s)
    low = centre.min(axis=0)
    span = int(centre[:, 1].max() - low[1]) + 1
    keys = np.unique(_cell_numbers(centre, low, span))
    return set(zip((keys // span + low[0]).tolist(), (keys % span + low[1]).tolist()))


def _cell_numbers(cells: np.ndarray, low: np.ndarray, span: int) -> np.ndarray:
    """Each cell (``n x 2`` integers, none below ``low``, rows fewer than ``span`` apart)
    as one integer, column-major."""
    return np.asarray((cells[:, 0] - low[0]) * span + (cells[:, 1] - low[1]))


def blocks(
    level: int,
    epsg: int,
    cells: Iterable[Cell],
    statuses: Sequence[str],
    geoms: np.ndarray,
    kept: Sequence[Block] = (),
) -> list[Block]:
    """The blocks of ``cells`` from the small plots centred in them (``statuses`` and
    ``geoms`` aligned; every small plot whose box centre lies in one of ``cells`` must be
    among them, others are ignored), merged with the ``kept`` blocks of those cells (the
    blocks of plots not among them, when only plots were added since).

    A cell is a grid of :data:`SQUARE_PIXELS` squares; a status's block is the union of the
    squares (within the cell) its plots' boxes touch, so it covers each of them and its
    outline follows the square grid: at most a few dozen vertices whatever the plots.
    """
    geoms = np.asarray(geoms, dtype=object)
    bounds = shapely.bounds(geoms) if len(geoms) else np.empty((0, 4))
    status = np.asarray(statuses, dtype=object)
    weight = np.ones(len(bounds), dtype=np.int64)
    if kept:
        more = _squares_of(level, epsg, kept)
        bounds, status = np.concatenate([bounds, more[0]]), np.concatenate([status, more[1]])
        weight = np.concatenate([weight, more[2]])
    return _merge(level, epsg, set(cells), bounds, status, weight)


def _squares_of(level: int, epsg: int, found: Sequence[Block]) -> tuple[Any, Any, Any]:
    """Blocks as stand-in plots, one per square they cover (a box around the square's
    centre, which a block covers exactly when it holds the square), the first square of
    each carrying the block's plot count: bounds, statuses, weights."""
    side = cell_size(level, epsg)
    n = CELL_PIXELS // SQUARE_PIXELS
    square = side / n
    i, j = np.divmod(np.arange(n * n), n)
    cx = np.repeat([b.cx for b in found], n * n)
    cy = np.repeat([b.cy for b in found], n * n)
    x = cx * side + (np.tile(i, len(found)) + 0.5) * square
    y = cy * side + (np.tile(j, len(found)) + 0.5) * square
    geom = np.repeat(np.asarray([b.geometry for b in found], dtype=object), n * n)
    held = shapely.contains_xy(geom, x, y)
    weight = np.zeros(len(held), dtype=np.int64)
    # the count goes on each block's first held square
    block = np.repeat(np.arange(len(found)), n * n)
    at = np.flatnonzero(held)
    lead = at[np.r_[True, block[at][1:] != block[at][:-1]]] if len(at) else at
    weight[lead] = [found[b].plots for b in block[lead].tolist()]
    q = square / 4
    bounds = np.column_stack([x - q, y - q, x + q, y + q])[held]
    status = np.repeat(np.asarray([b.status for b in found], dtype=object), n * n)[held]
    return bounds, status, weight[held]


def _merge(
    level: int,
    epsg: int,
    wanted: set[Cell],
    bounds: np.ndarray,
    status: np.ndarray,
    weight: np.ndarray,
) -> list[Block]:
    """The blocks of the ``wanted`` cells of the plots with these bounds and statuses, each
    counting ``weight`` plots."""
    if not len(bounds) or not wanted:
        return []
    drawn = ~np.isnan(bounds).any(axis=1)
    bounds, status, weight = bounds[drawn], status[drawn], weight[drawn]
    side = cell_size(level, epsg)
    n = CELL_PIXELS // SQUARE_PIXELS
    square = side / n
    cell = np.floor((bounds[:, :2] + bounds[:, 2:]) / 2 / side).astype(np.int64)
    mine = _cells_among(cell, wanted)
    bounds, status, cell, weight = bounds[mine], status[mine], cell[mine], weight[mine]
    if not len(cell):
        return []
    origin = cell * side
    lo = np.clip(np.floor((bounds[:, :2] - origin) / square), 0, n - 1).astype(np.int64)
    hi = np.clip(np.floor((bounds[:, 2:] - origin) / square), 0, n - 1).astype(np.int64)
    names = sorted(set(status.tolist()))
    code = np.searchsorted(np.asarray(names, dtype=object), status)
    # each plot's (cell, status) group: one integer key per group, in (cx, cy, status) order
    span = cell.max(axis=0) - cell.min(axis=0) + 1
    flat = ((cell[:, 0] - cell[:, 0].min()) * span[1] + cell[:, 1] - cell[:, 1].min()) * len(names)
    first, group = np.unique(flat + code, return_index=True, return_inverse=True)[1:]
    keys = np.column_stack([cell[first], code[first]])
    plots = np.bincount(group, weights=weight, minlength=len(keys)).astype(np.int64)
    touched = np.zeros((len(keys), n, n), dtype=bool)  # per group, square column, row
    for di in range(int((hi - lo)[:, 0].max()) + 1):
        for dj in range(int((hi - lo)[:, 1].max()) + 1):
            at = np.flatnonzero((lo[:, 0] + di <= hi[:, 0]) & (lo[:, 1] + dj <= hi[:, 1]))
            touched[group[at], lo[at, 0] + di, lo[at, 1] + dj] = True
    held = touched.reshape(len(keys), n * n) @ (1 << np.arange(n * n))  # bit i * n + j
    # a cell has 2^(n*n) possible outlines and few occur: each is merged once, in squares
    # (whole numbers, so exact), and placed on the grid of squares of the whole plane, on
    # which neighbouring cells' outlines share their edges' coordinates bit for bit
    shapes, which = np.unique(held, return_inverse=True)
    unit = _square_outlines(n, shapes)[which]
    corner = np.repeat(keys[:, :2] * n, shapely.get_num_coordinates(unit), axis=0)
    merged = shapely.transform(unit, lambda coords: (coords + corner) * square)
    return [
        Block(level, cx, cy, str(names[c]), p, geom)
        for (cx, cy, c), p, geom in zip(keys.tolist(), plots.tolist(), merged.tolist())
    ]


def _cells_among(cell: np.ndarray, wanted: set[Cell]) -> np.ndarray:
    """Which rows of ``cell`` (``n x 2`` integers) are among the ``wanted`` cells."""
    if not len(cell) or not wanted:
        return np.zeros(len(cell), dtype=bool)
    want = np.asarray(sorted(wanted), dtype=np.int64).reshape(-1, 2)
    low = np.minimum(cell.min(axis=0), want.min(axis=0))
    span = int(max(cell[:, 1].max(), want[:, 1].max()) - low[1]) + 1
    return np.isin(_cell_numbers(cell, low, span), _cell_numbers(want, low, span))


def _square_outlines(n: int, held: np.ndarray) -> np.ndarray:
    """The union of the squares of an ``n x n`` grid that each bit mask of ``held`` holds
    (bit ``i * n + j``: the square of column ``i``, row ``j``), in units of a square."""
    bit = np.arange(n * n)
    i, j = np.divmod(bit, n)
    squares = shapely.box(i, j, i + 1, j + 1)
    on = (held[:, None] >> bit) & 1 == 1
    grid = np.full(on.shape, None, dtype=object)
    grid[on] = np.broadcast_to(squares, on.shape)[on]
    return np.asarray(shapely.coverage_union_all(grid, axis=1), dtype=object)


class OverviewTable(Protocol):
    """What :func:`refresh` needs of a backend, inside the writing transaction."""

    epsg: int

    def small_plots(self, level: int, box: Box | None) -> tuple[list[str], np.ndarray]:
        """Status and geometry of the plots under :func:`min_size` at ``level`` whose box
        meets ``box`` (every such plot when None), sized the way the tile query sizes them."""
        ...

    def big(self, level: int, bounds: np.ndarray) -> np.ndarray:
        """Which plots with these bounds (``n x 4``, exact) the backend's :class:`SizeTest`
        draws alone at ``level`` (NaN bounds: none), as :meth:`small_plots` sizes them."""
        ...

    def blocks_in(self, level: int, cells: set[Cell]) -> list[Block]:
        """The stored blocks of ``cells`` of ``level``."""
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
        side = cell_size(level, table.epsg)
        xs, ys = [c[0] for c in cells], [c[1] for c in cells]
        box = (min(xs) * side, min(ys) * side, (max(xs) + 1) * side, (max(ys) + 1) * side)
        statuses, geoms = table.small_plots(level, box)
        rows = blocks(level, table.epsg, cells, statuses, geoms)
        table.replace(level, cells, rows)
        written += len(rows)
    return written


@dataclass(frozen=True)
class Added:
    """What one level's blocks are re-merged from after plots were only added: the cells
    they touch, the small ones among them, and the blocks those cells hold already."""

    level: int
    cells: set[Cell]
    statuses: Sequence[str]
    geoms: np.ndarray
    kept: list[Block]

    def merge(self, epsg: int) -> list[Block]:
        """The level's new blocks of :attr:`cells` (no store access: may run on a thread)."""
        return blocks(self.level, epsg, self.cells, self.statuses, self.geoms, self.kept)


def added(
    table: OverviewTable, statuses: Sequence[str] | np.ndarray, geoms: np.ndarray
) -> list[Added]:
    """Per level, the inputs of :func:`refresh_added`'s merge: reads the stored blocks of the
    touched cells, which writing the plots themselves does not change."""
    geoms = np.asarray(geoms, dtype=object)
    status = np.asarray(statuses, dtype=object)
    bounds = shapely.bounds(geoms) if len(geoms) else np.empty((0, 4))
    out = []
    for level in LEVELS:
        cells = cells_touched(level, table.epsg, bounds)
        if not cells:
            continue
        small = ~table.big(level, bounds)
        kept = table.blocks_in(level, cells)
        out.append(Added(level, cells, status[small], geoms[small], kept))
    return out


def refresh_added(
    table: OverviewTable, statuses: Sequence[str] | np.ndarray, geoms: np.ndarray
) -> int:
    """Re-merge the cells of plots just added (nothing else changed in the transaction)
    from the added plots themselves and the cells' stored blocks, which hold every other
    plot of those cells: the same blocks as :func:`refresh`, without reading the plots
    back. Returns the number of blocks written."""
    written = 0
    for part in added(table, statuses, geoms):
        rows = part.merge(table.epsg)
        table.replace(part.level, part.cells, rows)
        written += len(rows)
    return written


class MergeAhead:
    """The overview blocks of a transaction's first plot insert, from the rows in hand and
    the touched cells' stored blocks, read before the rows are written (writing plots does
    not change them). A backend whose write then waits on a server (PostgreSQL's COPY,
    index builds) calls :meth:`start` so they are merged on a thread meanwhile; else
    they are merged in :meth:`write`. (Started while SQLite inserts, or while the client
    still builds the COPY data, the merge took turns with it for the GIL: slower.)"""

    def __init__(self, table: OverviewTable, statuses: np.ndarray, geoms: np.ndarray):
        self._epsg = table.epsg
        self._parts = added(table, statuses, geoms)
        self._merging: list[Future[list[Block]]] | None = None

    def start(self) -> None:
        """Merge on a thread from now on (the caller is about to wait)."""
        if self._merging is None:
            pool = ThreadPoolExecutor(1, thread_name_prefix="zoneplan-overview")
            self._merging = [pool.submit(part.merge, self._epsg) for part in self._parts]
            pool.shutdown(wait=False)

    def write(self, table: OverviewTable) -> int:
        """Write each level's blocks as soon as they are merged; return how many."""
        written = 0
        for n, part in enumerate(self._parts):
            rows = part.merge(self._epsg) if self._merging is None else self._merging[n].result()
            table.replace(part.level, part.cells, rows)
            written += len(rows)
        return written

    def cancel(self) -> None:
        """Drop the merges not started (other plot writes followed: they are stale)."""
        for merging in self._merging or ():
            merging.cancel()


def block_key(where: str, status: str) -> str:
    """The text key of a block feature of a tile (its MVT feature id is
    :func:`geo.tiles.feature_ids` of it): ``where`` names the tile (GeoPackage: a status's
    blocks merged) or the cell (PostGIS, in SQL) as ``a/b/c``."""
    return f"block:{where}:{status}"


def merged(found: Sequence[Block]) -> list[tuple[str, int, shapely.Geometry]]:
    """A tile's blocks as one ``(status, plots, geometry)`` per status (cells never overlap,
    so a status's blocks form a coverage and merge cheaply): a few features per tile."""
    out: list[tuple[str, int, shapely.Geometry]] = []
    for name in sorted({b.status for b in found}):
        mine = [b for b in found if b.status == name]
        geom = shapely.coverage_union_all(np.asarray([b.geometry for b in mine], dtype=object))
        out.append((name, sum(b.plots for b in mine), geom))
    return out


def statuses_of(where: Mapping[str, Any] | None) -> tuple[bool, list[str] | None]:
    """Whether a plots ``where`` filter can be applied to blocks (it filters on status
    alone), and the statuses it keeps (None: every one)."""
    if not where:
        return True, None
    if set(where) != {"status"}:
        return False, None
    value = where["status"]
    return True, [value] if isinstance(value, str) else [str(v) for v in value]
