"""Mapbox Vector Tiles cut by PostGIS itself (``ST_AsMVTGeom``/``ST_AsMVT``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg import sql

from geo import tiles
from geo.layers import Layer
from geo.store.base import Where


def vector_tile(
    conn: psycopg.Connection,
    lyr: Layer,
    tile: tiles.Tile,
    *,
    properties: Sequence[str],
    where: Where | None,
    select: Callable[..., tuple[sql.Composed, list[Any]]],
) -> bytes:
    """One tile of ``lyr`` as :func:`geo.tiles.encode` cuts it, encoded by the database.

    The rows are the same R-tree (GiST) and ``where`` selection as the generic encoder's;
    geometries are projected to Web Mercator, clipped to the tile plus
    :data:`geo.tiles.BUFFER`, snapped to the :data:`geo.tiles.EXTENT` grid and simplified
    by :data:`geo.tiles.SIMPLIFY_UNITS` (what collapses is not drawn), the integer
    feature id is :data:`geo.tiles.FEATURE_ID_SQL` of the key (equal to
    :func:`geo.tiles.feature_ids`), and the key and ``properties`` columns are carried
    (NULLs left out). Empty bytes when no feature is drawn.
    """
    names = [lyr.key, *(p for p in properties if p != lyr.key)]
    key = sql.SQL("t.{}").format(sql.Identifier(lyr.key))
    what = sql.SQL(
        "ST_Simplify(ST_AsMVTGeom(ST_Transform(t.geom, {mercator}), "
        "ST_TileEnvelope(%s, %s, %s), {extent}, {buffer}, true), {simplify}) AS mvt_geom, "
        "{fid} AS mvt_id, {columns}"
    ).format(
        mercator=sql.Literal(tiles.WEB_MERCATOR_EPSG),
        simplify=sql.Literal(tiles.SIMPLIFY_UNITS),
        extent=sql.Literal(tiles.EXTENT),
        buffer=sql.Literal(tiles.BUFFER),
        fid=sql.SQL(tiles.FEATURE_ID_SQL).format(key),
        columns=sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(n)) for n in names),
    )
    rows, params = select(lyr, what, tile.working_bbox(), where)
    # MATERIALIZED: each geometry is cut once (inlined, the planner would repeat the
    # clip-and-simplify expression in the filter and again in the output).
    query = sql.SQL(
        "WITH r AS MATERIALIZED ({rows}) "
        "SELECT ST_AsMVT(r.*, {name}, {extent}, 'mvt_geom', 'mvt_id') FROM r "
        "WHERE r.mvt_geom IS NOT NULL AND NOT ST_IsEmpty(r.mvt_geom)"
    ).format(name=sql.Literal(lyr.name), extent=sql.Literal(tiles.EXTENT), rows=rows)
    row = conn.execute(query, [tile.z, tile.x, tile.y, *params]).fetchone()
    return bytes(row[0]) if row is not None and row[0] else b""
