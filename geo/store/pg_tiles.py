"""Mapbox Vector Tiles cut by PostGIS itself (``ST_AsMVTGeom``/``ST_AsMVT``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg import sql

from geo import overview, tiles
from geo.layers import Layer
from geo.store import overview_sql
from geo.store.base import Where
from geo.store.pg_derived import BLOCK_KEY, MERCATOR, SIZE, SIZED, TILE_ID, derived_columns

#: Local to the tile's transaction (the pooled connection's, which ends when the connection
#: goes back): a tile is a few ms of work, yet its estimates (the big-plot test, the UNION
#: with the blocks) pass the planner's thresholds for parallel workers (each a new process
#: loading PROJ) and JIT compilation: 100-250 ms a z12-z14 tile at 1M plots, 19-24 ms without.
_SETTINGS = (
    "SELECT set_config('jit', 'off', true), "
    "set_config('max_parallel_workers_per_gather', '0', true)"
)


def missing_columns(
    layers: Sequence[Layer], have: dict[str, set[str]], epsg: int
) -> list[tuple[str, Callable[[psycopg.Cursor], Any]]]:
    """Migrations adding the derived columns to the tables of a store made before them
    (``have``: the columns of each table), one table rewrite each; the partial indexes of
    big plots are made again on the plots' new size column."""
    keys: dict[str, sql.Composable] = {
        lyr.name: sql.Identifier(lyr.key) for lyr in layers if lyr.is_feature
    }
    keys[overview_sql.TABLE] = sql.SQL(BLOCK_KEY)
    out: list[tuple[str, Callable[[psycopg.Cursor], Any]]] = []
    for table, key in keys.items():
        wanted = derived_columns(key, sized=table == SIZED)
        missing = [ddl for name, ddl in wanted.items() if name not in have.get(table, wanted)]
        if not missing:
            continue
        alter = sql.SQL("ALTER TABLE {} {}").format(
            sql.Identifier(table),
            sql.SQL(", ").join(sql.SQL("ADD COLUMN ") + c for c in missing),
        )
        out.append((f"derive the tile columns of {table}", _executes(alter)))
        if table == SIZED and SIZE not in have[table] and overview_sql.TABLE in have:
            out.append(
                (
                    "index the big plots by their size",
                    lambda cur: overview_sql.PgOverview(cur.connection, epsg).index_big_plots(),
                )
            )
    return out


def _executes(query: sql.Composed) -> Callable[[psycopg.Cursor], Any]:
    """A migration step running ``query``."""
    return lambda cur: cur.execute(query)


def _cut(alias: str) -> sql.Composed:
    """The clip-and-simplify MVT geometry and the feature id of rows ``alias`` (its tile
    address left as three parameters)."""
    return sql.SQL(
        "ST_Simplify(ST_AsMVTGeom(ST_GeomFromEWKB({a}.{mercator}), ST_TileEnvelope(%s, %s, %s), {extent}, "
        "{buffer}, true), {simplify}) AS mvt_geom, {a}.{fid} AS mvt_id"
    ).format(
        a=sql.Identifier(alias),
        mercator=sql.Identifier(MERCATOR),
        extent=sql.Literal(tiles.EXTENT),
        buffer=sql.Literal(tiles.BUFFER),
        simplify=sql.Literal(tiles.SIMPLIFY_UNITS),
        fid=sql.Identifier(TILE_ID),
    )


def vector_tile(
    conn: psycopg.Connection,
    lyr: Layer,
    tile: tiles.Tile,
    *,
    properties: Sequence[str],
    where: Where | None,
    select: Callable[..., tuple[sql.Composed, list[Any]]],
    epsg: int,
    level: int | None = None,
    statuses: Sequence[str] | None = None,
) -> bytes:
    """One tile of ``lyr`` (stored in CRS ``epsg``) as :func:`geo.tiles.encode` cuts it, encoded by the database.

    The rows are the same R-tree (GiST) and ``where`` selection as the generic encoder's;
    geometries (in Web Mercator, :data:`MERCATOR`) are clipped to the tile plus
    :data:`geo.tiles.BUFFER`, snapped to the :data:`geo.tiles.EXTENT` grid and simplified
    by :data:`geo.tiles.SIMPLIFY_UNITS` (what collapses is not drawn), the integer
    feature id is :data:`geo.tiles.FEATURE_ID_SQL` of the key (:data:`TILE_ID`, equal to
    :func:`geo.tiles.feature_ids`), and the key and ``properties`` columns are carried
    (NULLs left out). Empty bytes when no feature is drawn.

    With a block ``level`` (plots, overview built: :mod:`geo.overview`) only the plots big
    enough to see are cut one by one; the rest come as that level's blocks of
    ``statuses`` (every status when None), one feature per cell and status with
    ``status`` and ``plots`` and no key.
    """
    names = [lyr.key, *(p for p in properties if p != lyr.key)]
    what = sql.SQL("{}, {}").format(
        _cut("t"), sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(n)) for n in names)
    )
    box = tile.working_bbox(epsg)
    rows, params = select(lyr, what, box, where, epsg=epsg)
    if level is not None:
        rows += sql.SQL(" AND ") + overview_sql.pg_size(level, epsg)
        rows = sql.SQL("{} UNION ALL {}").format(
            sql.SQL("SELECT *, NULL::integer AS plots FROM ({}) p").format(rows),
            _blocks(lyr, names, statuses),
        )
        cx0, cy0, cx1, cy1 = overview.cell_range(level, epsg, box)
        params += [tile.z, tile.x, tile.y, level, cx0, cx1, cy0, cy1]
        if statuses is not None:
            params.append(list(statuses))
    # MATERIALIZED: each geometry is cut once (inlined, the planner would repeat the
    # clip-and-simplify expression in the filter and again in the output).
    query = sql.SQL(
        "WITH r AS MATERIALIZED ({rows}) "
        "SELECT ST_AsMVT(r.*, {name}, {extent}, 'mvt_geom', 'mvt_id') FROM r "
        "WHERE r.mvt_geom IS NOT NULL AND NOT ST_IsEmpty(r.mvt_geom)"
    ).format(name=sql.Literal(lyr.name), extent=sql.Literal(tiles.EXTENT), rows=rows)
    conn.execute(_SETTINGS)
    row = conn.execute(query, [tile.z, tile.x, tile.y, *params]).fetchone()
    return bytes(row[0]) if row is not None and row[0] else b""


def _blocks(lyr: Layer, names: Sequence[str], statuses: Sequence[str] | None) -> sql.Composed:
    """The overview blocks under the tile, one row per cell and status, shaped like the
    plots' rows (the plots' columns NULL but ``status``, through a join that never matches).

    Cell by cell, not merged per status as the GeoPackage encoder merges them: clipping
    small polygons is cheaper in PostGIS than one collection of a few hundred (z12 tile of
    the 1M grid, load ~7: 9 ms against 22-52 ms)."""
    return sql.SQL(
        "SELECT {cut}, {columns}, o.plots FROM {table} o LEFT JOIN {plots} t ON false "
        "WHERE o.level = %s AND o.cx BETWEEN %s AND %s AND o.cy BETWEEN %s AND %s{status}"
    ).format(
        cut=_cut("o"),
        columns=sql.SQL(", ").join(
            sql.SQL("o.status" if n == "status" else "t.{}").format(sql.Identifier(n))
            for n in names
        ),
        table=sql.Identifier(overview_sql.TABLE),
        plots=sql.Identifier(lyr.name),
        status=sql.SQL(" AND o.status = ANY(%s)" if statuses is not None else ""),
    )
