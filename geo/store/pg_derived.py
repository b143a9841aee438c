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


def derived_columns(key: sql.Composable, *, sized: bool = False) -> dict[str, sql.Composable]:
    """The definitions of :data:`MERCATOR` and :data:`TILE_ID` (and with ``sized``
    :data:`SIZE`) by name, for a table whose geometry column is ``geom`` and whose text key
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
    return dict(zip([MERCATOR, TILE_ID, SIZE], columns))
