"""The columns PostGIS derives from each feature and overview row for tiles, kept by PostgreSQL."""

from __future__ import annotations

from psycopg import sql

from geo import tiles

#: Generated (stored) columns every feature table and the overview's table derive from their
#: row in the writing statement itself, on every write path: the geometry in Web Mercator
#: (EWKB: a second geometry column would show each table twice in GIS clients) and the MVT
#: feature id (:data:`geo.tiles.FEATURE_ID_SQL`) of the key. A tile cut then neither
#: projects nor hashes: at z14 (1,800 plots of the 1M store) those took ~6 and ~2 ms of
#: CPU out of ~25.
MERCATOR = "zp_mercator"
TILE_ID = "zp_tile_id"
#: An overview block's text key (:func:`geo.overview.block_key` of its cell) in SQL; the
#: ``::text`` casts keep it immutable, as a generated column's expression must be.
BLOCK_KEY = "('block:' || level::text || '/' || cx::text || '/' || cy::text || ':' || status)"


def derived_columns(key: sql.Composable) -> list[sql.Composable]:
    """The definitions of :data:`MERCATOR` and :data:`TILE_ID` for a table whose geometry
    column is ``geom`` and whose text key is the SQL expression ``key``."""
    return [
        sql.SQL("{} bytea GENERATED ALWAYS AS (ST_AsEWKB(ST_Transform(geom, {}))) STORED").format(
            sql.Identifier(MERCATOR), sql.Literal(tiles.WEB_MERCATOR_EPSG)
        ),
        sql.SQL("{} bigint GENERATED ALWAYS AS ({}) STORED").format(
            sql.Identifier(TILE_ID), sql.SQL(tiles.FEATURE_ID_SQL).format(key)
        ),
    ]
