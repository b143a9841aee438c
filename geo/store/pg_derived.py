"""The columns PostGIS derives from each feature and overview row for tiles, kept by PostgreSQL."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from geo import tiles
from geo.overview import SizeTest

if TYPE_CHECKING:  # imported by derived_columns: a GeoPackage store reads PG_SIZE without it
    from psycopg import sql

#: Generated (stored) columns every feature table and the overview's table derive from their
#: row in the writing statement itself, on every write path: the geometry in Web Mercator
#: (EWKB: a second geometry column would show each table twice in GIS clients) and the MVT
#: feature id (:data:`geo.tiles.FEATURE_ID_SQL`) of the key. A tile cut then neither
#: projects nor hashes: at z14 (1,800 plots of the 1M store) those took ~6 and ~2 ms of
#: CPU out of ~25.
MERCATOR = "zp_mercator"
TILE_ID = "zp_tile_id"
#: The plots table also keeps each plot's size (its exact box's longer side, store units),
#: which the overview compares with :func:`geo.overview.min_size`: a column comparison in
#: the tile query and in the predicates of the partial indexes of big plots, where four
#: box computations per row took ~2 ms of a z14 cut (1,800 plots).
SIZE = "zp_size"
SIZED = "plots"
SIZE_SQL = "greatest(ST_XMax(geom) - ST_XMin(geom), ST_YMax(geom) - ST_YMin(geom))"
#: ... and each plot's outline cut for :data:`READY_ZOOM` as far as no tile changes it (see
#: :func:`ready_sql`), so a z14 tile (the zoom of most single plots per tile: 1,700 at 1M)
#: only moves each plot into its tile: ~1.1 ms of ~5.5 of server CPU per tile; the
#: overview's blocks keep theirs at their own level's zoom (:func:`ready_blocks_sql`),
#: which spares z12/z13 tiles wagyu on each of ~400 blocks (~40% of their CPU). Writes pay
#: for it: ~2.2 us of server CPU per plot row written, ~9 us per block.
READY = "zp_tile_ready"
READY_ZOOM = 14
#: The derived columns only ever selected, never compared by a query: a bulk load's
#: ANALYZE skips them (~a third of its server CPU: 0.29 -> 0.19 s per 200k plots).
OUTPUT_ONLY = (MERCATOR, TILE_ID, READY)
#: The ready outline's type: a domain over ``geometry`` so that ``geometry_columns`` (and
#: GIS clients) list each plots table once, by its real geometry; as fast to read as
#: ``geometry`` itself and ~0.4 ms a z14 tile faster than EWKB ``bytea`` parsed per row.
READY_TYPE = "zp_tile_geometry"
#: Creates :data:`READY_TYPE` unless the database has it (run before any table uses it).
READY_TYPE_DDL = (
    f"DO $$ BEGIN CREATE DOMAIN {READY_TYPE} AS geometry; "
    "EXCEPTION WHEN duplicate_object THEN NULL; END $$"
)


def ready_sql(z: int) -> str:
    """A plot's outline (``geom``) in whole-world tile units of zoom ``z`` (x east, y south
    from the world's north-west corner: a tile's units less ``EXTENT`` times its x and y),
    cut as :func:`geo.store.pg_tiles` cuts a polygon wholly inside a tile: mapped, snapped
    to the unit, oriented as wagyu orients it, simplified (SRID 0: it is no map CRS).

    The per-tile units are these less a multiple of ``EXTENT``, an even whole number, so
    snapping (round half to even) and simplification, translation-invariant on whole numbers
    below 2^53, give the same vertices as the tile's own affine map, but where the two
    products differ across a half unit (a last-bit difference of the doubles)."""
    f = tiles.EXTENT * (1 << z) / (2 * tiles.HALF_WORLD)
    shift = tiles.HALF_WORLD * f
    return (
        f"ST_SetSRID(ST_Simplify(ST_ForcePolygonCCW(ST_SnapToGrid(ST_Affine("
        f"ST_Transform(geom, {tiles.WEB_MERCATOR_EPSG}), {f!r}, 0, 0, {-f!r}, {shift!r}, "
        f"{shift!r}), 1)), {tiles.SIMPLIFY_UNITS!r}), 0)"
    )


def exact_sizes(bounds: np.ndarray) -> np.ndarray:
    """:data:`SIZE_SQL` in memory: the longer side of each exact box (``n x 4``)."""
    return np.asarray(np.maximum(bounds[:, 2] - bounds[:, 0], bounds[:, 3] - bounds[:, 1]))


#: The overview's size test in PostGIS: on the stored :data:`SIZE` of a plots row
#: (unqualified: every query testing it reads the plots table alone), in memory on the
#: exact box it is derived from.
PG_SIZE = SizeTest(f'"{SIZE}"', exact_sizes)
#: An overview block's text key (:func:`geo.overview.block_key` of its cell) in SQL; the
#: ``::text`` casts keep it immutable, as a generated column's expression must be.
BLOCK_KEY = "('block:' || level::text || '/' || cx::text || '/' || cy::text || ':' || status)"


def ready_blocks_sql() -> str:
    """An overview block's outline (``geom``) as :func:`ready_sql` gives a plot's, at the
    zoom of its level (:func:`geo.overview.level_of` is the zoom itself at every level):
    through ``ST_AsMVTGeom`` over the whole world at that zoom, whose wagyu reshapes the
    squares meeting at corners as it does within a tile (whole-number units: the same
    rings, vertex for vertex, for the 7,615 z14 block and tile pairs checked at 1M plots)."""
    return (
        f"ST_SetSRID(ST_Simplify(ST_AsMVTGeom(ST_Transform(geom, {tiles.WEB_MERCATOR_EPSG}), "
        f"ST_MakeEnvelope({-tiles.HALF_WORLD!r}, {-tiles.HALF_WORLD!r}, {tiles.HALF_WORLD!r}, "
        f"{tiles.HALF_WORLD!r}), {tiles.EXTENT} << level, 0, false), "
        f"{tiles.SIMPLIFY_UNITS!r}), 0)"
    )


def derived_columns(
    key: sql.Composable, *, sized: bool = False, blocks: bool = False
) -> dict[str, sql.Composable]:
    """The definitions of :data:`MERCATOR` and :data:`TILE_ID` (and with ``sized``
    :data:`SIZE`; with ``sized`` or, for the overview's blocks, ``blocks`` :data:`READY`,
    whose type :data:`READY_TYPE_DDL` makes) by name, for a table whose geometry column is ``geom`` and whose text key
    is the SQL expression ``key``."""
    from psycopg import sql

    columns = [
        sql.SQL("{} bytea GENERATED ALWAYS AS (ST_AsEWKB(ST_Transform(geom, {}))) STORED").format(
            sql.Identifier(MERCATOR), sql.Literal(tiles.WEB_MERCATOR_EPSG)
        ),
        sql.SQL("{} bigint GENERATED ALWAYS AS ({}) STORED").format(
            sql.Identifier(TILE_ID), sql.SQL(tiles.FEATURE_ID_SQL).format(key)
        ),
    ]
    if sized:
        columns.append(
            sql.SQL("{} double precision GENERATED ALWAYS AS ({}) STORED").format(
                sql.Identifier(SIZE), sql.SQL(SIZE_SQL)
            )
        )
    if sized or blocks:
        ready = ready_sql(READY_ZOOM) if sized else ready_blocks_sql()
        columns.append(
            sql.SQL("{} {} GENERATED ALWAYS AS ({}) STORED").format(
                sql.Identifier(READY), sql.Identifier(READY_TYPE), sql.SQL(ready)
            )
        )
    return {
        c: ddl for c, ddl in zip([MERCATOR, TILE_ID, *([SIZE] if sized else []), READY], columns)
    }
