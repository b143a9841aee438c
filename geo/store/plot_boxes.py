"""The plots' index boxes and filter columns in memory, to count and page a viewport."""

from __future__ import annotations

import math
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from geo.layers import get_layer
from geo.store.base import Bbox, Rows, Store, Where, compile_where, list_has

#: Side of a grid cell, metres: a plot is filed under the cell of its lower-left corner.
CELL_M = 500.0
#: A new index is built no sooner than this many times the last build's duration after
#: it, so a stream of writes keeps at most this share of a core rebuilding.
REBUILD_SPACING = 3.0
#: Below about this many index hits the SQL answers (as fast as the arrays, no revision
#: query).
MIN_HITS = 2_000
#: The conditions answered from the arrays; any other falls back to SQL.
_OPS = {"in", ">=", "<=", "range|null", "listhas"}
_FIELDS = {"status", "area_ha", "sectors"}


def _float_down(x: np.ndarray) -> np.ndarray:
    """The largest float32 <= x, as float64 (PostGIS's ``next_float_down``)."""
    f = x.astype(np.float32)
    return np.where(f > x, np.nextafter(f, np.float32(-np.inf)), f).astype(np.float64)


def _float_up(x: np.ndarray) -> np.ndarray:
    """The smallest float32 >= x, as float64 (PostGIS's ``next_float_up``)."""
    f = x.astype(np.float32)
    return np.where(f < x, np.nextafter(f, np.float32(np.inf)), f).astype(np.float64)


@dataclass(eq=False)
class PlotBoxes:
    """Every plot of one plots revision, in the key's order as the backend sorts it.

    Attributes
    ----------
    revision : str
        The store's plots revision these arrays hold.
    ids : ndarray of str
        Plot ids in ascending key order (the backend's ``ORDER BY``).
    boxes : ndarray, shape (n, 4)
        minx, maxx, miny, maxy as the backend's bbox test compares them (float32 values,
        rounded outward as the R-tree / GiST box holds them); NaN for no geometry.
    round_query : bool
        Whether the backend rounds the query box outward to float32 too (PostGIS).
    status, sectors : ndarray of int
        Codes into ``status_values`` and ``sector_values``.
    area : ndarray of float
        ``area_ha``, NaN for NULL (PostgreSQL's NaN, which sorts above every number, as
        +inf).
    """

    revision: str
    ids: np.ndarray
    boxes: np.ndarray
    round_query: bool
    status: np.ndarray
    status_values: list[Any]
    area: np.ndarray
    sectors: np.ndarray
    sector_values: list[Any]

    def __post_init__(self) -> None:
        #: Set once a newer revision was seen: the next page reads the revision first.
        self.stale = False
        b = self.boxes
        drawn = ~np.isnan(b).any(axis=1)
        wide = drawn & ((b[:, 1] - b[:, 0] > CELL_M) | (b[:, 3] - b[:, 2] > CELL_M))
        small = np.flatnonzero(drawn & ~wide)
        self.big = np.flatnonzero(wide)
        self.x0 = float(b[small, 0].min()) if len(small) else 0.0
        self.y0 = float(b[small, 2].min()) if len(small) else 0.0
        cx = np.floor((b[small, 0] - self.x0) / CELL_M).astype(np.int64)
        cy = np.floor((b[small, 2] - self.y0) / CELL_M).astype(np.int64)
        self.nx = int(cx.max()) + 1 if len(small) else 1
        self.ny = int(cy.max()) + 1 if len(small) else 1
        keys = cy * self.nx + cx
        # plots per square metre of the grid, and their mean size: a viewport's likely hits
        self.density = len(small) / (self.nx * self.ny * CELL_M * CELL_M)
        self.mean_w = float(np.mean(b[small, 1] - b[small, 0])) if len(small) else 0.0
        self.mean_h = float(np.mean(b[small, 3] - b[small, 2])) if len(small) else 0.0
        self.max_w = float(np.max(b[small, 1] - b[small, 0])) if len(small) else 0.0
        self.max_h = float(np.max(b[small, 3] - b[small, 2])) if len(small) else 0.0
        order = np.argsort(keys, kind="stable")
        self.cell_keys = keys[order]
        self.cell_rows = np.concatenate([small[order], self.big])
        # each bound in cell order (the wide plots last), so a cell's plots are contiguous
        self.cell_boxes = [np.ascontiguousarray(b[self.cell_rows, k]) for k in range(4)]

    def likely_hits(self, bbox: Bbox) -> float:
        """About how many plots' boxes meet ``bbox`` (the zone's mean density; no query)."""
        width, height = bbox[2] - bbox[0] + self.mean_w, bbox[3] - bbox[1] + self.mean_h
        return float(self.density * width * height + len(self.big))

    def hits(self, bbox: Bbox) -> np.ndarray:
        """Positions of the plots whose index box meets ``bbox`` (as the backend's SQL)."""
        q = np.asarray(bbox, dtype=np.float64)
        if self.round_query:
            q = np.array([*_float_down(q[:2]), *_float_up(q[2:])])
        # a plot filed under a cell left of or below the box's reaches at most its widest
        # (tallest) one into it; a metre more for the rounding of these sums
        low = np.array([q[0] - self.max_w - 1.0, q[1] - self.max_h - 1.0])
        cx = np.floor((np.array([low[0], q[2]]) - self.x0) / CELL_M).astype(np.int64)
        cy = np.floor((np.array([low[1], q[3]]) - self.y0) / CELL_M).astype(np.int64)
        cx, cy = np.clip(cx, 0, self.nx - 1), np.clip(cy, 0, self.ny - 1)
        rows = np.arange(cy[0], cy[1] + 1, dtype=np.int64) * self.nx
        lo = np.searchsorted(self.cell_keys, rows + cx[0], "left")
        hi = np.searchsorted(self.cell_keys, rows + cx[1], "right")
        n = hi - lo
        starts = np.repeat(lo - np.cumsum(n) + n, n)
        first_big = len(self.cell_keys)
        cand = np.concatenate(
            [starts + np.arange(int(n.sum())), np.arange(first_big, len(self.cell_rows))]
        )
        x0, x1, y0, y1 = (bound[cand] for bound in self.cell_boxes)
        meets = (x0 <= q[2]) & (x1 >= q[0]) & (y0 <= q[3]) & (y1 >= q[1])
        found: np.ndarray = self.cell_rows[cand[meets]]
        return found

    def matches(self, at: np.ndarray, where: Where | None) -> np.ndarray | None:
        """Which of the plots at ``at`` pass ``where`` (None: a condition SQL must answer)."""
        keep = np.ones(len(at), dtype=bool)
        for name, op, value in compile_where(get_layer("plots"), where):
            if name not in _FIELDS or op not in _OPS:
                return None
            if name == "area_ha":
                bounds = (
                    value
                    if op == "range|null"
                    else ((value, None) if op == ">=" else (None, value))
                )
                # a missing bound of a plain comparison is SQL's NULL (nothing passes)
                if op != "range|null" and value is None:
                    return None
                if not all(v is None or math.isfinite(v) for v in bounds):
                    return None
                area = self.area[at]
                ok = np.ones(len(at), dtype=bool)
                if bounds[0] is not None:
                    ok &= area >= bounds[0]
                if bounds[1] is not None:
                    ok &= area <= bounds[1]
                keep &= (ok | np.isnan(area)) if op == "range|null" else ok
            elif name == "status" and op == "in":
                table = np.array([s in set(value) for s in self.status_values], bool)
                keep &= table[self.status[at]]
            elif name == "sectors" and op == "listhas":
                everything, item = value
                # the list rule itself, once per distinct text (a zone has few)
                table = np.array([list_has(t, item, everything) for t in self.sector_values], bool)
                keep &= table[self.sectors[at]]
            else:
                return None
        return keep


def _codes(values: Sequence[Any]) -> tuple[np.ndarray, list[Any]]:
    """Codes of ``values`` into their distinct values (None among them)."""
    distinct = list(dict.fromkeys(values))
    index = {v: i for i, v in enumerate(distinct)}
    return np.fromiter((index[v] for v in values), np.int32, len(values)), distinct


def _read_gpkg(store: Any) -> tuple[list[tuple[Any, ...]], np.ndarray, bool]:
    with store._reading() as conn:
        rows = conn.execute(
            "SELECT fid, plot_id, status, area_ha, sectors FROM plots ORDER BY plot_id"
        ).fetchall()
        tree = conn.execute("SELECT id, minx, maxx, miny, maxy FROM rtree_plots_geom").fetchall()
    fids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
    boxes = np.full((len(rows), 4), np.nan)
    if tree:
        held = np.array(tree, dtype=np.float64)
        order = np.argsort(fids)
        at = np.searchsorted(fids, held[:, 0].astype(np.int64), sorter=order)
        boxes[order[at]] = held[:, 1:]  # the R-tree's own float32 values
    return rows, boxes, False


def _read_postgis(store: Any) -> tuple[list[tuple[Any, ...]], np.ndarray, bool]:
    with store._pool.connection() as conn:
        rows = conn.execute(
            "SELECT NULL, plot_id, status,"
            " CASE WHEN area_ha = 'NaN' THEN 'Infinity'::float8 ELSE area_ha END, sectors,"
            " ST_XMin(geom::box2d), ST_XMax(geom::box2d), ST_YMin(geom::box2d),"
            " ST_YMax(geom::box2d) FROM plots ORDER BY plot_id"
        ).fetchall()
    raw = np.array([r[5:] for r in rows], dtype=np.float64).reshape(-1, 4)
    # the GiST box and the serialized geometry's hold float32 bounds rounded outward
    boxes = np.column_stack(
        [_float_down(raw[:, 0]), _float_up(raw[:, 1]), _float_down(raw[:, 2]), _float_up(raw[:, 3])]
    )
    return [r[:5] for r in rows], boxes, True


def build(store: Store) -> PlotBoxes | None:
    """Read the plots' boxes and filter columns (None when a write landed meanwhile, or
    the backend keeps no such index)."""
    from geo.store.gpkg import GpkgStore
    from geo.store.postgis import PostgisStore

    revision = store.revision(["plots"])
    if isinstance(store, GpkgStore):
        rows, boxes, rounds = _read_gpkg(store)
    elif isinstance(store, PostgisStore):
        rows, boxes, rounds = _read_postgis(store)
    else:
        return None
    if store.revision(["plots"]) != revision:  # a write landed while reading
        return None
    status, status_values = _codes([r[2] for r in rows])
    sectors, sector_values = _codes([r[4] for r in rows])
    area = np.array([np.nan if r[3] is None else r[3] for r in rows], dtype=np.float64)
    return PlotBoxes(
        revision,
        np.array([r[1] for r in rows], dtype=str),
        boxes,
        rounds,
        status,
        status_values,
        area,
        sectors,
        sector_values,
    )


class _Kept:
    """A store's latest index and its builder's state."""

    def __init__(self) -> None:
        self.boxes: PlotBoxes | None = None
        self.building = False
        self.next_build = 0.0


_KEPT: weakref.WeakKeyDictionary[Store, _Kept] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def _rebuild(store: Store, kept: _Kept) -> None:
    began, boxes = time.monotonic(), None
    try:
        boxes = build(store)
    finally:
        took = time.monotonic() - began
        with _LOCK:
            if boxes is not None:
                kept.boxes = boxes
            kept.building = False
            kept.next_build = time.monotonic() + REBUILD_SPACING * took


def current(store: Store, *, wait: bool = False) -> PlotBoxes | None:
    """The index of the store's current plots revision, or None while it is (re)built in
    the background (``wait``: build it now)."""
    revision = store.revision(["plots"])
    with _LOCK:
        kept = _KEPT.setdefault(store, _Kept())
        if kept.boxes is not None and kept.boxes.revision == revision:
            return kept.boxes
        start = not kept.building and (wait or time.monotonic() >= kept.next_build)
        if start:
            kept.building = True
    if wait and not start:  # another thread builds it: wait for that build
        time.sleep(0.01)
        return current(store, wait=True)
    if start and wait:
        _rebuild(store, kept)
        return current(store)
    if start:
        threading.Thread(target=_rebuild, args=(store, kept), daemon=True).start()
    return None


def latest(store: Store) -> PlotBoxes | None:
    """The index last built for the store, of whatever revision (no query)."""
    with _LOCK:
        kept = _KEPT.get(store)
        return None if kept is None else kept.boxes


def page(
    store: Store,
    columns: Sequence[str],
    *,
    bbox: Bbox,
    where: Where | None,
    order_by: str,
    limit: int,
    offset: int,
) -> Rows | None:
    """A viewport's page of plots and how many match, answered from the index (the page's
    rows read by key), or None where the SQL must answer: no index of the revision the
    rows were read at, a sort other than by plot id, a condition the arrays do not hold.

    Same features, order and count as :meth:`geo.store.base.Store.rows` with ``matched``.
    """
    if order_by.lstrip("-") != "plot_id":
        return None
    boxes = latest(store)
    # Few hits cost the SQL less than the revision query: even an older index tells
    if boxes is not None and boxes.likely_hits(bbox) < MIN_HITS:
        return None
    if boxes is None or boxes.stale:
        boxes = current(store)
        if boxes is None:
            return None
    at = boxes.hits(bbox)
    keep = boxes.matches(at, where)
    if keep is None:
        return None
    found = np.sort(at[keep])  # positions are in key order
    if order_by.startswith("-"):
        found = found[::-1]
    ids = boxes.ids[found[offset : offset + limit]].tolist()
    rows = (
        store.rows("plots", columns, where={**(where or {}), "plot_id": ids}, order_by=order_by)
        if ids
        else Rows({name: [] for name in columns}, np.empty(0, dtype=object))
    )
    # The revision after the rows were read: unchanged, they and the count are that
    # revision's (revisions only grow); else the SQL answers and the index is rebuilt.
    # The filters were applied again with the rows, so even then nothing hidden shows.
    if store.revision(["plots"]) != boxes.revision or len(rows) != len(ids):
        boxes.stale = True
        current(store)
        return None
    rows.matched = len(found)
    return rows
