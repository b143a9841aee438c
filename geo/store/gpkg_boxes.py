"""The plots' R-tree boxes and filter columns read from a GeoPackage."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager

import numpy as np

from geo.store.base import PlotBoxRows

#: Keys per ``IN (...)`` (below SQLite's oldest bound-parameter limit).
CHUNK = 900


def read(
    reading: Callable[[], AbstractContextManager[sqlite3.Connection]],
    keys: Sequence[str] | None = None,
) -> PlotBoxRows:
    """The plots ``keys`` (every plot when None) with their R-tree boxes, by ``plot_id``.

    Parameters
    ----------
    reading : callable
        Gives the store's read connection (a context manager).
    keys : sequence of str, optional
        The plots to read; absent ones are left out.

    Returns
    -------
    PlotBoxRows
        The R-tree's own float32 values as its bbox test compares them; SQLite orders
        text bytewise (UTF-8: code point order).
    """
    with reading() as conn:
        if keys is None:
            rows = conn.execute(
                "SELECT fid, plot_id, status, area_ha, sectors FROM plots ORDER BY plot_id"
            ).fetchall()
            tree = conn.execute("SELECT id, minx, maxx, miny, maxy FROM rtree_plots_geom")
            held = np.array(tree.fetchall(), dtype=np.float64).reshape(-1, 5)
        else:
            rows, found = [], []
            wanted = sorted(set(keys))
            for k in range(0, len(wanted), CHUNK):
                part = wanted[k : k + CHUNK]
                marks = ", ".join("?" * len(part))
                rows += conn.execute(
                    "SELECT fid, plot_id, status, area_ha, sectors FROM plots"
                    f" WHERE plot_id IN ({marks})",
                    part,
                ).fetchall()
                found += conn.execute(
                    "SELECT r.id, r.minx, r.maxx, r.miny, r.maxy FROM plots p"
                    f" JOIN rtree_plots_geom r ON r.id = p.fid WHERE p.plot_id IN ({marks})",
                    part,
                ).fetchall()
            rows.sort(key=lambda r: r[1])
            held = np.array(found, dtype=np.float64).reshape(-1, 5)
    return PlotBoxRows(
        [r[1] for r in rows],
        [r[2] for r in rows],
        np.array([np.nan if r[3] is None else r[3] for r in rows], dtype=np.float64),
        [r[4] for r in rows],
        _boxes(np.fromiter((r[0] for r in rows), np.int64, len(rows)), held),
        round_query=False,
        code_order=True,
    )


def _boxes(fids: np.ndarray, held: np.ndarray) -> np.ndarray:
    """Each fid's R-tree box (``held``: id and the four bounds), NaN where it has none."""
    boxes = np.full((len(fids), 4), np.nan)
    if len(held) and len(fids):
        order = np.argsort(fids)
        at = np.searchsorted(fids, held[:, 0].astype(np.int64), sorter=order)
        boxes[order[np.minimum(at, len(fids) - 1)]] = held[:, 1:]
    return boxes
