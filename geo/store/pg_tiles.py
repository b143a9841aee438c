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
from geo.store.pg_derived import (
    BLOCK_KEY,
    MERCATOR,
    READY,
    READY_TYPE,
    READY_TYPE_DDL,
    READY_ZOOM,
    SIZE,
    SIZED,
    TILE_ID,
    derived_columns,
)

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
        wanted = derived_columns(key, sized=table == SIZED, blocks=table == overview_sql.TABLE)
        missing = [ddl for name, ddl in wanted.items() if name not in have.get(table, wanted)]
        if not missing:
            continue
        alter = sql.SQL("ALTER TABLE {} {}").format(
            sql.Identifier(table),
            sql.SQL(", ").join(sql.SQL("ADD COLUMN ") + c for c in missing),
        )
        if READY in wanted and READY not in have[table]:
            alter = sql.SQL("{}; {}").format(sql.SQL(READY_TYPE_DDL), alter)
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


#: Metres the shortcut's box keeps inside the clipping box (see :func:`_inside`).
_INSET = 4.0


def _inside(tile: tiles.Tile) -> tuple[list[float], list[float]]:
    """The parameters of :func:`_cut`'s shortcut for ``tile``: the Web Mercator box within
    which a feature needs no clipping (the tile plus :data:`geo.tiles.BUFFER` less
    :data:`_INSET` metres: PostGIS compares 4-byte boxes, each rounded outward by less than
    a 4-byte float's step, 1 m below 2^24 m and 2 m beyond, so a geometry passing the test
    lies within the clipping box itself), and the affine map to tile units
    that ``ST_AsMVTGeom`` applies (its arithmetic on ``ST_TileEnvelope``'s bounds, so every
    coordinate snaps to the same unit)."""
    n = 1 << tile.z
    step = 2 * tiles.HALF_WORLD / n
    x0, x1 = -tiles.HALF_WORLD + step * tile.x, -tiles.HALF_WORLD + step * (tile.x + 1)
    y0, y1 = tiles.HALF_WORLD - step * (tile.y + 1), tiles.HALF_WORLD - step * tile.y
    fx, fy = tiles.EXTENT / (x1 - x0), -(tiles.EXTENT / (y1 - y0))
    pad = (x1 - x0) * tiles.BUFFER / tiles.EXTENT - _INSET
    return [x0 - pad, y0 - pad, x1 + pad, y1 + pad], [fx, fy, -x0 * fx, -y1 * fy]


def _cut(shortcut: bool) -> sql.Composed:
    """The clip-and-simplify MVT geometry of the Web Mercator geometry ``q.g`` (its tile
    address, and with ``shortcut`` :func:`_inside`'s box and affine map first, as
    parameters).

    ``ST_AsMVTGeom`` runs every polygon through wagyu (clipping and validation), ~2 us
    each: most of a z14 tile of 1,700 plots. With ``shortcut`` (rows ``q.fast`` of a
    polygon layer) a polygon wholly inside the clipping box is mapped to tile units and
    snapped to them as ``ST_AsMVTGeom`` maps and snaps (its half-unit pre-simplification
    left to the simplification after) and oriented as wagyu orients it; wagyu would clip
    nothing off it. The 1M synthetic plots come out equal ring for ring (start vertex
    aside) at z12-z18; irregular plots may keep a vertex the other path's simplification
    drops (each within its unit of tolerance, a 16th of a pixel). Blocks keep wagyu: their squares touch at corners, which it reshapes."""
    cut: sql.Composable = sql.SQL(
        "ST_AsMVTGeom(q.g, ST_TileEnvelope(%s, %s, %s), {extent}, {buffer}, true)"
    ).format(extent=sql.Literal(tiles.EXTENT), buffer=sql.Literal(tiles.BUFFER))
    if shortcut:
        cut = sql.SQL(
            "CASE WHEN q.fast AND q.g @ ST_MakeEnvelope(%s, %s, %s, %s, {srid}) THEN "
            "ST_ForcePolygonCCW(ST_SnapToGrid(ST_Affine(q.g, %s, 0, 0, %s, %s, %s), 1)) "
            "ELSE {wagyu} END"
        ).format(srid=sql.Literal(tiles.WEB_MERCATOR_EPSG), wagyu=cut)
    return sql.SQL("ST_Simplify({}, {})").format(cut, sql.Literal(tiles.SIMPLIFY_UNITS))


#: Tile units the ready shortcut's box keeps inside the clipping box: below 2^26 units (the
#: whole world at z14) a 4-byte float steps by at most 4, and both boxes round outward.
_READY_INSET = 8


def _ready(tile: tiles.Tile) -> tuple[list[float], list[float], list[float]]:
    """The parameters of :func:`_ready_cut` for ``tile``, in whole-world tile units: the
    box within which a stored ready outline needs no clipping (the tile plus
    :data:`geo.tiles.BUFFER` less :data:`_READY_INSET`), the box outside which clipping
    leaves nothing (plus :data:`_READY_INSET`), and the shift into the tile's units."""
    x0, y0 = float(tiles.EXTENT * tile.x), float(tiles.EXTENT * tile.y)
    x1, y1 = x0 + tiles.EXTENT, y0 + tiles.EXTENT
    inner, outer = tiles.BUFFER - _READY_INSET, tiles.BUFFER + _READY_INSET
    return (
        [x0 - inner, y0 - inner, x1 + inner, y1 + inner],
        [x0 - outer, y0 - outer, x1 + outer, y1 + outer],
        [-x0, -y0],
    )


def _ready_cut(shortcut: bool) -> sql.Composed:
    """:func:`_cut` for rows ``q`` that may carry their stored outline cut for the tile's
    zoom (``q.ready``: :func:`geo.store.pg_derived.ready_sql` of a plot at
    :data:`READY_ZOOM`, :func:`~geo.store.pg_derived.ready_blocks_sql` of an overview block
    at its level) and their Web Mercator EWKB (``q.m``), or else their decoded geometry
    (``q.g``) for :func:`_cut`: an outline inside the clipping box is only moved into the
    tile (a plot as :func:`_cut`'s shortcut would cut it, a block as wagyu does), one
    wholly outside it is not drawn (as wagyu would clip it all away); the rest, crossing
    the box, are decoded and go through ``ST_AsMVTGeom`` as in :func:`_cut`; rows without
    either take :func:`_cut` (parameters: :func:`_ready`'s, the tile's address, then
    :func:`_cut`'s)."""
    wagyu = sql.SQL(
        "ST_Simplify(ST_AsMVTGeom(ST_GeomFromEWKB(q.m), ST_TileEnvelope(%s, %s, %s), "
        "{extent}, {buffer}, true), {units})"
    ).format(
        extent=sql.Literal(tiles.EXTENT),
        buffer=sql.Literal(tiles.BUFFER),
        units=sql.Literal(tiles.SIMPLIFY_UNITS),
    )
    # the rows outside the clipping box (~110 of a z14 tile's 1,850: the store-CRS box
    # that selects them is wider than the tile) are dropped here, not by wagyu
    return sql.SQL(
        "CASE WHEN q.ready @ ST_MakeEnvelope(%s, %s, %s, %s) THEN ST_Translate(q.ready, %s, %s) "
        "WHEN NOT q.ready && ST_MakeEnvelope(%s, %s, %s, %s) THEN NULL "
        "WHEN q.m IS NOT NULL THEN {} ELSE {} END"
    ).format(wagyu, _cut(shortcut))


def settle(conn: psycopg.Connection) -> bool:
    """Set the tile query's transaction up (:data:`_SETTINGS`) and say whether the store has
    its plot overview, in one round trip."""
    row = conn.execute(
        sql.SQL("{}, to_regclass(%s) IS NOT NULL").format(sql.SQL(_SETTINGS)),
        (overview_sql.TABLE,),
    ).fetchone()
    return bool(row and row[-1])


def _row(alias: str, names: Sequence[str], fast: bool, outlines: bool, ready: bool) -> sql.Composed:
    """The columns a tile reads of rows ``alias``: the Web Mercator geometry ``g``, the
    feature id, ``names`` and whether :func:`_cut` may take its shortcut; with
    ``outlines`` (:func:`_ready_cut`) the ready outline and the undecoded Web Mercator
    EWKB before them, with ``ready`` those two instead of ``g`` (decoded only for the few
    that need it), else NULL."""
    return sql.SQL("{}, {a}.{fid} AS mvt_id, {columns}, {fast} AS fast").format(
        _geometries(alias, outlines, ready),
        a=sql.Identifier(alias),
        fid=sql.Identifier(TILE_ID),
        columns=sql.SQL(", ").join(
            sql.SQL("{}.{}").format(sql.Identifier(alias), sql.Identifier(n)) for n in names
        ),
        fast=sql.Literal(fast),
    )


def _geometries(alias: str, outlines: bool, ready: bool) -> sql.Composed:
    """The geometry columns of :func:`_row` and :func:`_blocks`."""
    head = "ST_GeomFromEWKB({a}.{mercator}) AS g"
    if outlines and ready:
        head = "{a}.{ready} AS ready, {a}.{mercator} AS m, NULL::geometry AS g"
    elif outlines:
        head = "NULL::{type} AS ready, NULL::bytea AS m, " + head
    return sql.SQL(head).format(
        a=sql.Identifier(alias),
        ready=sql.Identifier(READY),
        type=sql.Identifier(READY_TYPE),
        mercator=sql.Identifier(MERCATOR),
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

    Run inside a transaction :func:`settle` set up. The rows are the same R-tree (GiST)
    and ``where`` selection as the generic encoder's; geometries (in Web Mercator,
    :data:`MERCATOR`) are clipped to the tile plus :data:`geo.tiles.BUFFER`, snapped to
    the :data:`geo.tiles.EXTENT` grid and simplified by :data:`geo.tiles.SIMPLIFY_UNITS`
    (what collapses is not drawn; see :func:`_cut`, and at :data:`READY_ZOOM` the plots'
    stored outlines, :func:`_ready_cut`), the integer feature id is
    :data:`geo.tiles.FEATURE_ID_SQL` of the key (:data:`TILE_ID`, equal to
    :func:`geo.tiles.feature_ids`), and the key and ``properties`` columns are carried
    (NULLs left out). Empty bytes when no feature is drawn.

    With a block ``level`` (plots, overview built: :mod:`geo.overview`) only the plots big
    enough to see are cut one by one; the rest come as that level's blocks of
    ``statuses`` (every status when None), one feature per cell and status with
    ``status`` and ``plots`` and no key.
    """
    names = [lyr.key, *(p for p in properties if p != lyr.key)]
    shortcut = lyr.geometry == "Polygon"
    # stored outlines: the plots' at READY_ZOOM, the blocks' at their own level's zoom
    ready = lyr.name == SIZED and tile.z == READY_ZOOM
    blocks_ready = level is not None and level == tile.z
    outlines = ready or blocks_ready
    box = tile.working_bbox(epsg)
    rows, params = select(lyr, _row("t", names, shortcut, outlines, ready), box, where, epsg=epsg)
    carried = [*names]
    if level is not None:
        rows += sql.SQL(" AND ") + overview_sql.pg_size(level, epsg)
        rows = sql.SQL("{} UNION ALL {}").format(
            sql.SQL("SELECT *, NULL::integer AS plots FROM ({}) p").format(rows),
            _blocks(lyr, names, statuses, outlines, blocks_ready),
        )
        cx0, cy0, cx1, cy1 = overview.cell_range(level, epsg, box)
        params += [level, cx0, cx1, cy0, cy1]
        if statuses is not None:
            params.append(list(statuses))
        carried.append("plots")
    address = [tile.z, tile.x, tile.y]
    # OFFSET 0 keeps q and r subqueries: each row's geometry is decoded once however often
    # the cut names it, and cut once (inlined, the planner would repeat the cut in the
    # filter and again in the output); cheaper than a materialised CTE (3-10% of the
    # server's CPU per tile at z12-z15).
    query = sql.SQL(
        "SELECT ST_AsMVT(r.*, {name}, {extent}, 'mvt_geom', 'mvt_id') FROM "
        "(SELECT {cut} AS mvt_geom, q.mvt_id, {carried} FROM ({rows} OFFSET 0) q OFFSET 0) r "
        "WHERE r.mvt_geom IS NOT NULL AND NOT ST_IsEmpty(r.mvt_geom)"
    ).format(
        cut=_ready_cut(shortcut) if outlines else _cut(shortcut),
        carried=sql.SQL(", ").join(sql.SQL("q.{}").format(sql.Identifier(n)) for n in carried),
        name=sql.Literal(lyr.name),
        extent=sql.Literal(tiles.EXTENT),
        rows=rows,
    )
    cut_params: list[Any] = address
    if shortcut:
        inner, affine = _inside(tile)
        cut_params = [*inner, *affine, *address]
    if outlines:
        inside, outside, shift = _ready(tile)
        cut_params = [*inside, *shift, *outside, *address, *cut_params]
    # binary: the tile comes back as its bytes, not hex text (~100 KB at z14: ~5% of a cut)
    with conn.cursor(binary=True) as cur:
        row = cur.execute(query, [*cut_params, *params]).fetchone()
    return bytes(row[0]) if row is not None and row[0] else b""


def _blocks(
    lyr: Layer, names: Sequence[str], statuses: Sequence[str] | None, outlines: bool, ready: bool
) -> sql.Composed:
    """The overview blocks under the tile, one row per cell and status, shaped like the
    plots' rows (the plots' columns NULL but ``status``, through a join that never matches;
    ``outlines`` and ``ready`` as :func:`_row`'s).

    Cell by cell, not merged per status as the GeoPackage encoder merges them: clipping
    small polygons is cheaper in PostGIS than one collection of a few hundred (z12 tile of
    the 1M grid, load ~7: 9 ms against 22-52 ms)."""
    return sql.SQL(
        "SELECT {geometries}, o.{fid}, {columns}, false, o.plots "
        "FROM {table} o LEFT JOIN {plots} t ON false "
        "WHERE o.level = %s AND o.cx BETWEEN %s AND %s AND o.cy BETWEEN %s AND %s{status}"
    ).format(
        geometries=_geometries("o", outlines, ready),
        fid=sql.Identifier(TILE_ID),
        columns=sql.SQL(", ").join(
            sql.SQL("o.status" if n == "status" else "t.{}").format(sql.Identifier(n))
            for n in names
        ),
        table=sql.Identifier(overview_sql.TABLE),
        plots=sql.Identifier(lyr.name),
        status=sql.SQL(" AND o.status = ANY(%s)" if statuses is not None else ""),
    )
