"""The plots' GiST boxes and filter columns read from PostGIS."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from geo.store.base import PlotBoxRows
from geo.store.plot_boxes import float_down, float_up

_COLUMNS = (
    "SELECT plot_id, status,"
    " CASE WHEN area_ha = 'NaN' THEN 'Infinity'::float8 ELSE area_ha END, sectors,"
    " ST_XMin(geom::box2d), ST_XMax(geom::box2d), ST_YMin(geom::box2d),"
    " ST_YMax(geom::box2d) FROM plots"
)
#: Collations that order text by code point, as numpy does.
CODE_POINT = {"C", "POSIX", "C.UTF-8", "C.utf8", "ucs_basic"}
_COLLATION = (
    "SELECT c.collname, CASE WHEN c.collname = 'default' THEN d.datcollate"
    " ELSE c.collcollate END FROM pg_attribute a JOIN pg_collation c ON c.oid = a.attcollation,"
    " pg_database d WHERE a.attrelid = 'plots'::regclass AND a.attname = 'plot_id'"
    " AND d.datname = current_database()"
)


def read(pool: Any, keys: Sequence[str] | None = None) -> PlotBoxRows:
    """The plots ``keys`` (every plot when None) with their GiST boxes, by ``plot_id``.

    Parameters
    ----------
    pool : psycopg_pool.ConnectionPool
        The store's connections.
    keys : sequence of str, optional
        The plots to read; absent ones are left out.

    Returns
    -------
    PlotBoxRows
        The bounds rounded outward to float32 as the GiST box (and the serialized
        geometry's) holds them.
    """
    with pool.connection() as conn:
        if keys is None:
            rows = conn.execute(_COLUMNS + " ORDER BY plot_id").fetchall()
        else:
            rows = conn.execute(
                _COLUMNS + " WHERE plot_id = ANY(%s) ORDER BY plot_id", (sorted(set(keys)),)
            ).fetchall()
        name, collate = conn.execute(_COLLATION).fetchone() or (None, None)
    raw = np.array([r[4:] for r in rows], dtype=np.float64).reshape(-1, 4)
    boxes = np.column_stack(
        [float_down(raw[:, 0]), float_up(raw[:, 1]), float_down(raw[:, 2]), float_up(raw[:, 3])]
    )
    return PlotBoxRows(
        [r[0] for r in rows],
        [r[1] for r in rows],
        np.array([np.nan if r[2] is None else r[2] for r in rows], dtype=np.float64),
        [r[3] for r in rows],
        boxes,
        round_query=True,
        code_order=name in CODE_POINT or collate in CODE_POINT,
    )
