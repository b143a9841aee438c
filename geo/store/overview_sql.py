"""The plot overview's table (:mod:`geo.overview`) in a GeoPackage and in PostGIS: made,
rebuilt, re-merged cell by cell inside the writing transaction, and read for tiles."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely

from geo import overview
from geo.overview import Block, Box, Cell
from geo.store.pg_derived import BLOCK_KEY, PG_SIZE, READY_TYPE_DDL, derived_columns
from geo.store.rtree_pack import REBUILD_RATIO, add_entries, float32_out, pack_rtree

if TYPE_CHECKING:  # psycopg is imported where PostGIS is used (a GeoPackage command skips it)
    import psycopg
    from psycopg import sql

#: The blocks' table, in both backends (geometry in the store's CRS).
TABLE = "zoneplan_plot_overview"
#: Levels whose big plots get a spatial index of their own (PostGIS: a partial index;
#: GeoPackage: an R-tree per level), where most plots of a dense layer are small, so the
#: full index would hand back every one of them.
PG_INDEXED_LEVELS = (12, 13)
GPKG_INDEXED_LEVELS = PG_INDEXED_LEVELS


def gpkg_big_rtree(level: int) -> str:
    """The R-tree of the plots big enough to draw alone at ``level`` (GeoPackage)."""
    return f"{TABLE}_big{level}"


def _cells_box(level: int, epsg: int, cells: set[Cell]) -> Box:
    """The box just inside the cells' range (its edges in no cell outside it)."""
    side = overview.cell_size(level, epsg)
    xs, ys = [c[0] for c in cells], [c[1] for c in cells]
    inset = side / 4
    return (
        min(xs) * side + inset,
        min(ys) * side + inset,
        (max(xs) + 1) * side - inset,
        (max(ys) + 1) * side - inset,
    )


def _in_cells(found: list[Block] | None, cells: set[Cell]) -> list[Block]:
    """The blocks of ``cells`` among ``found``."""
    return [b for b in found or () if (b.cx, b.cy) in cells]


# ----------------------------------------------------------------------------- GeoPackage
def _rtree_sizes(bounds: np.ndarray) -> np.ndarray:
    """The longer side of the box the R-tree holds for each exact box (``n x 4``): its
    4-byte floats rounded outward, subtracted in double precision as SQLite does."""
    minx, maxx = float32_out(bounds[:, 0], bounds[:, 2])
    miny, maxy = float32_out(bounds[:, 1], bounds[:, 3])
    wide = maxx.astype(np.float64) - minx.astype(np.float64)
    high = maxy.astype(np.float64) - miny.astype(np.float64)
    return np.maximum(wide, high)


#: The overview's size test in a GeoPackage: on the R-tree row ``r`` of a plot (its box as
#: the index holds it), in memory on the same box rebuilt from the exact one.
GPKG_SIZE = overview.SizeTest("max(r.maxx - r.minx, r.maxy - r.miny)", _rtree_sizes)


def gpkg_exists(conn: sqlite3.Connection) -> bool:
    """Whether the store has its overview built (every table of it: one made by an older
    version is rebuilt by ``zoneplan overview``, drawn plot by plot until then)."""
    names = [TABLE, *(gpkg_big_rtree(level) for level in GPKG_INDEXED_LEVELS)]
    found = conn.execute(
        f"SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN "
        f"({', '.join('?' * len(names))})",
        names,
    ).fetchone()[0]
    return bool(found == len(names))


class GpkgOverview:
    """The overview table of a GeoPackage on a writing connection; ``added``: the fids and
    exact bounds of the plots the transaction inserted when it changed plots in no other
    way, which the big-plot R-trees then add to what they hold (no re-read of the plots'
    index)."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        epsg: int,
        decode: Any,
        added: tuple[np.ndarray, np.ndarray] | None = None,
    ):
        self.conn = conn
        self.epsg = epsg
        self._decode = decode
        self._added = added

    def create(self) -> None:
        """(Re)make the empty table."""
        self.conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        self.conn.execute(
            f"CREATE TABLE {TABLE} (level INTEGER NOT NULL, cx INTEGER NOT NULL, "
            "cy INTEGER NOT NULL, status TEXT NOT NULL, plots INTEGER NOT NULL, geom BLOB NOT NULL)"
        )
        self.conn.execute(f"CREATE INDEX {TABLE}_cell ON {TABLE} (level, cx, cy)")
        for level in GPKG_INDEXED_LEVELS:
            self.conn.execute(f"DROP TABLE IF EXISTS {gpkg_big_rtree(level)}")
            self.conn.execute(
                f"CREATE VIRTUAL TABLE {gpkg_big_rtree(level)} "
                "USING rtree(id, minx, maxx, miny, maxy)"
            )

    def _index_big(self, level: int, box: Box | None) -> None:
        """Re-index the big plots of ``level`` whose boxes meet ``box`` (all when None), from
        the plots' own R-tree as this transaction sees it, or from the bounds of the plots
        it only added; many of them (a bulk import) are packed into a new tree with the
        entries kept, as the plots' own index is."""
        big = gpkg_big_rtree(level)
        if self._added is not None:  # every other plot is as it was: so are its entries
            fids, bounds = self._added
            drawn = GPKG_SIZE.big(level, self.epsg, bounds)
            add_entries(self.conn, big, fids[drawn], bounds[drawn])
            return
        meets = "{0}minx <= ? AND {0}maxx >= ? AND {0}miny <= ? AND {0}maxy >= ?"
        params: list[Any] = [] if box is None else [box[2], box[0], box[3], box[1]]
        select = (
            "SELECT r.id, r.minx, r.miny, r.maxx, r.maxy FROM rtree_plots_geom r WHERE "
            + GPKG_SIZE.predicate(level, self.epsg)
            + ("" if box is None else f" AND {meets.format('r.')}")
        )
        found = self.conn.execute(select, params).fetchall()
        held = self.conn.execute(f"SELECT count(*) FROM {big}_rowid").fetchone()[0]
        if len(found) >= REBUILD_RATIO * held:
            kept = (
                []
                if box is None
                else self.conn.execute(
                    f"SELECT id, minx, miny, maxx, maxy FROM {big} WHERE NOT ({meets.format('')})",
                    params,
                ).fetchall()
            )
            rows = np.array(kept + found, dtype=np.float64).reshape(-1, 5)
            pack_rtree(self.conn, big, rows[:, 0].astype(np.int64), rows[:, 1:])
            return
        if box is None:
            self.conn.execute(f"DELETE FROM {big}")
        else:
            self.conn.execute(
                f"DELETE FROM {big} WHERE id IN (SELECT id FROM {big} WHERE {meets.format('')})",
                params,
            )
        self.conn.executemany(
            f"INSERT INTO {big} (id, minx, miny, maxx, maxy) VALUES (?, ?, ?, ?, ?)", found
        )

    def small_plots(self, level: int, box: Box | None) -> tuple[list[str], np.ndarray]:
        query = "SELECT t.status, t.geom FROM plots t JOIN rtree_plots_geom r ON r.id = t.fid"
        params: list[Any] = []
        if box is not None:
            query += " AND r.minx <= ? AND r.maxx >= ? AND r.miny <= ? AND r.maxy >= ?"
            params += [box[2], box[0], box[3], box[1]]
        query += f" WHERE NOT ({GPKG_SIZE.predicate(level, self.epsg)})"
        rows = self.conn.execute(query, params).fetchall()
        if not rows:
            return [], np.empty(0, dtype=object)
        statuses, blobs = zip(*rows)
        return list(statuses), self._decode(list(blobs))

    def big(self, level: int, bounds: np.ndarray) -> np.ndarray:
        return GPKG_SIZE.big(level, self.epsg, bounds)

    def blocks_in(self, level: int, cells: set[Cell]) -> list[Block]:
        return _in_cells(
            gpkg_blocks(self.conn, self.epsg, level, _cells_box(level, self.epsg, cells), None),
            cells,
        )

    def replace(self, level: int, cells: set[Cell] | None, rows: list[Block]) -> None:
        if cells is None:
            self.conn.execute(f"DELETE FROM {TABLE} WHERE level = ?", (level,))
        else:
            self.conn.executemany(
                f"DELETE FROM {TABLE} WHERE level = ? AND cx = ? AND cy = ?",
                [(level, cx, cy) for cx, cy in cells],
            )
        if level in GPKG_INDEXED_LEVELS:
            side = overview.cell_size(level, self.epsg)
            xs, ys = [c[0] for c in cells or ()], [c[1] for c in cells or ()]
            self._index_big(
                level,
                None
                if cells is None
                else (min(xs) * side, min(ys) * side, (max(xs) + 1) * side, (max(ys) + 1) * side),
            )
        wkb: list[Any] = shapely.to_wkb([b.geometry for b in rows]).tolist() if rows else []
        self.conn.executemany(
            f"INSERT INTO {TABLE} (level, cx, cy, status, plots, geom) VALUES (?, ?, ?, ?, ?, ?)",
            [(b.level, b.cx, b.cy, b.status, b.plots, w) for b, w in zip(rows, wkb)],
        )


def gpkg_blocks(
    conn: sqlite3.Connection,
    epsg: int,
    level: int,
    box: Box,
    statuses: Sequence[str] | None,
) -> list[Block] | None:
    """The blocks of ``level`` in the cells ``box`` meets, of ``statuses`` (every one when
    None); None when the store has no overview."""
    if not gpkg_exists(conn):
        return None
    cx0, cy0, cx1, cy1 = overview.cell_range(level, epsg, box)
    query = (
        f"SELECT cx, cy, status, plots, geom FROM {TABLE} WHERE level = ? "
        "AND cx BETWEEN ? AND ? AND cy BETWEEN ? AND ?"
    )
    params: list[Any] = [level, cx0, cx1, cy0, cy1]
    if statuses is not None:
        query += f" AND status IN ({', '.join('?' * len(statuses))})"
        params += list(statuses)
    rows = conn.execute(query, params).fetchall()
    geoms: list[Any] = shapely.from_wkb([r[4] for r in rows]).tolist() if rows else []
    return [Block(level, r[0], r[1], r[2], r[3], g) for r, g in zip(rows, geoms)]


def gpkg_tile_rows(
    names: Sequence[str],
    rows: list[tuple[Any, ...]],
    found: list[Block],
    decode: Any,
    where: str,
) -> tuple[dict[str, list[Any]], np.ndarray, list[str]]:
    """The columns, geometries and feature-id keys of a GeoPackage plots tile: the big
    plots' ``rows`` (``names`` then the geometry blob) and the tile's blocks, merged per
    status (few features for the Python encoder), named by ``where`` (``z/x/y``)."""
    blocks = overview.merged(found)
    cols = list(zip(*rows)) if rows else [() for _ in range(len(names) + 1)]
    columns: dict[str, list[Any]] = {n: list(c) for n, c in zip(names, cols[:-1])}
    geoms = decode(list(cols[-1]))
    ids = [str(r[0]) for r in rows] + [overview.block_key(where, b[0]) for b in blocks]
    if blocks:
        columns = {n: v + [None] * len(blocks) for n, v in columns.items()}
        if "status" in columns:
            columns["status"][len(rows) :] = [b[0] for b in blocks]
        columns["plots"] = [None] * len(rows) + [b[1] for b in blocks]
        geoms = np.concatenate([geoms, np.asarray([b[2] for b in blocks], dtype=object)])
    return columns, geoms, ids


# ----------------------------------------------------------------------------- PostGIS
def pg_size(level: int, epsg: int) -> sql.Composable:
    """The big-plot test (:data:`geo.store.pg_derived.PG_SIZE`) of a plots row in SQL."""
    from psycopg import sql

    return sql.SQL(PG_SIZE.predicate(level, epsg))


def pg_exists(conn: psycopg.Connection) -> bool:
    """Whether the store has its overview built."""
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (TABLE,)).fetchone()
    return bool(row and row[0])


class PgOverview:
    """The overview table of a PostGIS store on a writing connection."""

    def __init__(self, conn: psycopg.Connection, epsg: int):
        self.conn = conn
        self.epsg = epsg

    def create(self) -> None:
        """(Re)make the empty table and the plots' partial indexes of big plots."""
        from psycopg import sql

        self.conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        self.conn.execute(READY_TYPE_DDL)
        self.conn.execute(
            sql.SQL(
                f"CREATE TABLE {TABLE} (level integer NOT NULL, cx integer NOT NULL, "
                "cy integer NOT NULL, status text NOT NULL, plots integer NOT NULL, "
                f"geom geometry(Geometry, {int(self.epsg)}) NOT NULL, {{}})"
            ).format(sql.SQL(", ").join(derived_columns(sql.SQL(BLOCK_KEY), blocks=True).values()))
        )
        self.conn.execute(f"CREATE INDEX {TABLE}_cell ON {TABLE} (level, cx, cy)")
        self.index_big_plots()

    def index_big_plots(self) -> None:
        """(Re)make the plots' partial GiST indexes of the plots big at each indexed level."""
        from psycopg import sql

        for level in PG_INDEXED_LEVELS:
            name = f"plots_geom_big{level}"
            self.conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(name)))
            self.conn.execute(
                sql.SQL("CREATE INDEX {} ON plots USING gist (geom) WHERE {}").format(
                    sql.Identifier(name), pg_size(level, self.epsg)
                )
            )

    def small_plots(self, level: int, box: Box | None) -> tuple[list[str], np.ndarray]:
        from psycopg import sql

        query = sql.SQL("SELECT t.status, ST_AsBinary(t.geom) FROM plots t WHERE NOT ({})").format(
            pg_size(level, self.epsg)
        )
        params: list[Any] = []
        if box is not None:
            query += sql.SQL(" AND t.geom && ST_MakeEnvelope(%s, %s, %s, %s, {})").format(
                sql.Literal(int(self.epsg))
            )
            params += [float(v) for v in box]
        rows = self.conn.execute(query, params).fetchall()
        if not rows:
            return [], np.empty(0, dtype=object)
        statuses, blobs = zip(*rows)
        return list(statuses), np.asarray(shapely.from_wkb([bytes(b) for b in blobs]))

    def big(self, level: int, bounds: np.ndarray) -> np.ndarray:
        return PG_SIZE.big(level, self.epsg, bounds)

    def blocks_in(self, level: int, cells: set[Cell]) -> list[Block]:
        return _in_cells(
            pg_blocks(self.conn, self.epsg, level, _cells_box(level, self.epsg, cells), None), cells
        )

    def replace(self, level: int, cells: set[Cell] | None, rows: list[Block]) -> None:
        if cells is None:
            self.conn.execute(f"DELETE FROM {TABLE} WHERE level = %s", (level,))
        else:
            self.conn.execute(
                f"DELETE FROM {TABLE} o USING unnest(%s::int[], %s::int[]) AS c(cx, cy) "
                "WHERE o.level = %s AND o.cx = c.cx AND o.cy = c.cy",
                ([c[0] for c in cells], [c[1] for c in cells], level),
            )
        if not rows:
            return
        from geo.store import pg_copy

        # binary COPY, not an INSERT per block: a bulk import writes tens of thousands of them
        numbers = np.asarray([(b.level, b.cx, b.cy, b.plots) for b in rows], dtype=np.int64)
        columns = [pg_copy.framed_integers(numbers[:, i]) for i in range(3)]
        columns.append(pg_copy.framed_texts([b.status for b in rows]))
        columns.append(pg_copy.framed_integers(numbers[:, 3]))
        geoms = np.asarray([b.geometry for b in rows], dtype=object)
        columns.append(pg_copy.framed_geometries(geoms, self.epsg))
        copy = f"COPY {TABLE} (level, cx, cy, status, plots, geom) FROM STDIN (FORMAT BINARY)"
        with self.conn.cursor() as cur, cur.copy(copy) as out:
            for block in pg_copy.copy_binary_columns(columns):
                out.write(block)


def pg_blocks(
    conn: psycopg.Connection,
    epsg: int,
    level: int,
    box: Box,
    statuses: Sequence[str] | None,
) -> list[Block] | None:
    """:func:`gpkg_blocks` on PostGIS."""
    if not pg_exists(conn):
        return None
    cx0, cy0, cx1, cy1 = overview.cell_range(level, epsg, box)
    query = (
        f"SELECT cx, cy, status, plots, ST_AsBinary(geom) FROM {TABLE} WHERE level = %s "
        "AND cx BETWEEN %s AND %s AND cy BETWEEN %s AND %s"
    )
    params: list[Any] = [level, cx0, cx1, cy0, cy1]
    if statuses is not None:
        query += " AND status = ANY(%s)"
        params.append(list(statuses))
    rows = conn.execute(query, params).fetchall()
    geoms: list[Any] = shapely.from_wkb([bytes(r[4]) for r in rows]).tolist() if rows else []
    return [Block(level, r[0], r[1], r[2], r[3], g) for r, g in zip(rows, geoms)]
