"""The plots' index boxes and filter columns in memory, to count and page a viewport."""

from __future__ import annotations

import math
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from geo.layers import get_layer
from geo.store.base import (
    Bbox,
    PlotBoxRows,
    Rows,
    Store,
    StoreError,
    Where,
    compile_where,
    list_has,
)
from geo.store.box_grid import BoxGrid
from geo.store.plot_changes import AuditMark, changed_plots, newest_audit

#: A full build (of a write the audit trail cannot patch in) starts no sooner than this
#: many times the last build's duration after it, so a stream of such writes keeps at
#: most this share of a core rebuilding.
REBUILD_SPACING = 3.0
#: Below about this many index hits the SQL answers (as fast as the arrays, no revision
#: query).
MIN_HITS = 2_000
#: A patch is made for at most this many written plots plus this share of the zone;
#: more are read whole.
PATCH_MIN, PATCH_SHARE = 1_000, 0.05
#: A full build looks this far below the newest audit id for ids not committed yet.
GAP_WINDOW = 256
#: The conditions answered from the arrays; any other falls back to SQL.
_OPS = {"in", ">=", "<=", "range|null", "listhas"}
_FIELDS = {"status", "area_ha", "sectors"}


def float_down(x: np.ndarray) -> np.ndarray:
    """The largest float32 <= x, as float64 (PostGIS's ``next_float_down``)."""
    f = x.astype(np.float32)
    return np.where(f > x, np.nextafter(f, np.float32(-np.inf)), f).astype(np.float64)


def float_up(x: np.ndarray) -> np.ndarray:
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
    #: Where in the audit trail the rows were read (None: a patch cannot follow it).
    mark: AuditMark | None = None
    #: Whether ``ids`` are in code point order (a new id's place is found without SQL).
    code_order: bool = False
    grid: BoxGrid | None = None

    def __post_init__(self) -> None:
        #: Set once a newer revision was seen: the next page reads the revision first.
        self.stale = False
        if self.grid is None:
            self.grid = BoxGrid.of(self.boxes)

    def likely_hits(self, bbox: Bbox) -> float:
        """About how many plots' boxes meet ``bbox`` (the zone's mean density; no query)."""
        g = self.grid
        assert g is not None
        width, height = bbox[2] - bbox[0] + g.mean_w, bbox[3] - bbox[1] + g.mean_h
        return float(g.density * width * height + g.apart)

    def hits(self, bbox: Bbox) -> np.ndarray:
        """Positions of the plots whose index box meets ``bbox`` (as the backend's SQL)."""
        q = np.asarray(bbox, dtype=np.float64)
        if self.round_query:
            q = np.array([*float_down(q[:2]), *float_up(q[2:])])
        assert self.grid is not None
        return self.grid.hits(q)

    def matches(self, at: np.ndarray, where: Where | None) -> np.ndarray | None:
        """Which of the plots at ``at`` pass ``where`` (None: a condition SQL must answer)."""
        keep = np.ones(len(at), dtype=bool)
        for name, op, value in compile_where(get_layer("plots"), where):
            if name not in _FIELDS or op not in _OPS:
                return None
            if name == "area_ha":
                ok = _area_passes(self.area[at], op, value)
                if ok is None:
                    return None
                keep &= ok
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


def _area_passes(area: np.ndarray, op: str, value: Any) -> np.ndarray | None:
    """Which ``area`` values pass ``op`` with ``value`` as the SQL compares them (None:
    a bound the SQL must judge: missing or not finite)."""
    bounds = value if op == "range|null" else ((value, None) if op == ">=" else (None, value))
    # a missing bound of a plain comparison is SQL's NULL (nothing passes)
    if op != "range|null" and value is None:
        return None
    if not all(v is None or math.isfinite(v) for v in bounds):
        return None
    ok = np.ones(len(area), dtype=bool)
    if bounds[0] is not None:
        ok &= area >= bounds[0]
    if bounds[1] is not None:
        ok &= area <= bounds[1]
    return (ok | np.isnan(area)) if op == "range|null" else ok


def _codes(values: Sequence[Any], known: Sequence[Any] = ()) -> tuple[np.ndarray, list[Any]]:
    """Codes of ``values`` into their distinct values (None among them), after ``known``."""
    distinct = list(dict.fromkeys([*known, *values]))
    index = {v: i for i, v in enumerate(distinct)}
    return np.fromiter((index[v] for v in values), np.int32, len(values)), distinct


def _mark(store: Store) -> AuditMark:
    """The newest audit id, and the ids just below it not committed yet (a full read
    must look for them again, as a patch does for the ids it skipped)."""
    top = newest_audit(store)
    seen = {a for a, _, _ in store.changes_since(max(0, top - GAP_WINDOW))}
    now = time.monotonic()
    return AuditMark(
        top, {i: now for i in range(max(1, top - GAP_WINDOW + 1), top) if i not in seen}
    )


def build(store: Store) -> PlotBoxes | None:
    """Read the plots' boxes and filter columns (None when a write landed meanwhile, or
    the backend keeps no such index)."""
    revision = store.revision(["plots"])
    mark = _mark(store)  # before the rows: they are at least this new
    got = store.plot_boxes()
    if got is None or store.revision(["plots"]) != revision:  # a write landed while reading
        return None
    status, status_values = _codes(got.status)
    sectors, sector_values = _codes(got.sectors)
    return PlotBoxes(
        revision,
        np.array(got.ids, dtype=str),
        got.boxes,
        got.round_query,
        status,
        status_values,
        got.area,
        sectors,
        sector_values,
        mark,
        got.code_order,
    )


def patched(old: PlotBoxes, store: Store) -> PlotBoxes | None:
    """``old`` with the plots written since it was read, as a new index (``old`` unchanged
    for its readers); None when the audit trail cannot say what changed (a full build
    must answer), or a write landed while reading."""
    revision = store.revision(["plots"])
    if revision == old.revision:
        return old
    if old.mark is None or not old.code_order:
        return None
    keys, mark = changed_plots(store, old.mark)
    if keys is None or len(keys) > PATCH_MIN + PATCH_SHARE * len(old.ids):
        return None
    got = store.plot_boxes(keys)
    if got is None or not got.code_order or store.revision(["plots"]) != revision:
        return None
    return _applied(old, revision, mark, keys, got)


def _applied(
    old: PlotBoxes, revision: str, mark: AuditMark, keys: list[str], got: PlotBoxRows
) -> PlotBoxes | None:
    """``old``'s arrays with the plots ``keys`` as ``got`` holds them (absent: deleted)."""
    n, wanted, now = len(old.ids), np.array(keys, dtype=str), np.array(got.ids, dtype=str)
    ids = (
        old.ids if wanted.dtype.itemsize <= old.ids.dtype.itemsize else old.ids.astype(wanted.dtype)
    )
    at = np.minimum(np.searchsorted(ids, wanted), max(n - 1, 0))
    held = (ids[at] == wanted) if n else np.zeros(len(wanted), bool)
    here = np.isin(wanted, now)
    gone = at[held]  # old rows written or deleted (sorted: keys are)
    dropped = at[held & ~here]
    added = wanted[~held & here]
    above = np.searchsorted(ids, added)
    place = above - np.searchsorted(dropped, above)  # among the rows kept
    moves = bool(len(dropped) or len(added))

    def written(a: np.ndarray, fill: Any, values: np.ndarray) -> np.ndarray:
        # a copy only of what changes: inserts and deletes move rows once (no sort),
        # updates write into the copy; an array the writes leave alone is shared
        if not moves and np.array_equal(a[rows], values, equal_nan=a.dtype.kind == "f"):
            return a
        out = np.delete(a, dropped, axis=0) if moves else a.copy()
        out = np.insert(out, place, fill, axis=0) if len(added) else out
        out[rows] = values
        return out

    new_ids = np.insert(np.delete(ids, dropped), place, added) if moves else ids
    rows = np.searchsorted(new_ids, now)
    status, status_values = _codes(got.status, old.status_values)
    sectors, sector_values = _codes(got.sectors, old.sector_values)
    boxes = written(old.boxes, np.nan, got.boxes)
    grid = old.grid
    assert grid is not None
    if boxes is not old.boxes:
        grid = grid.refiled(old.boxes, boxes, gone, dropped, place, rows)
        if grid.apart > 64 + len(new_ids) // 8:  # many outside the grid: file them anew
            return None
    return PlotBoxes(
        revision,
        new_ids,
        boxes,
        old.round_query,
        written(old.status, 0, status),
        status_values,
        written(old.area, np.nan, got.area),
        written(old.sectors, 0, sectors),
        sector_values,
        mark,
        old.code_order,
        grid,
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
    except StoreError:  # closed or unreachable: SQL answers meanwhile, a later page retries
        pass
    finally:
        took = time.monotonic() - began
        with _LOCK:
            if boxes is not None:
                kept.boxes = boxes
            kept.building = False
            kept.next_build = time.monotonic() + REBUILD_SPACING * took


def current(store: Store, *, wait: bool = False) -> PlotBoxes | None:
    """The index of the store's current plots revision: the last one patched with the
    plots written since when the audit trail names them, else None while it is rebuilt
    whole in the background (``wait``: build it now)."""
    revision = store.revision(["plots"])
    with _LOCK:
        kept = _KEPT.setdefault(store, _Kept())
        held = kept.boxes
        if held is not None and held.revision == revision:
            return held
        start = not kept.building
        if start:
            kept.building = True
    if not start:
        if wait:  # another thread builds it: wait for that build
            time.sleep(0.01)
            return current(store, wait=True)
        return None
    boxes = None
    try:
        # two tries: a write landing while the changes are read spoils one
        for _ in range(2):
            if held is None or (boxes := patched(held, store)) is not None:
                break
    except BaseException:
        with _LOCK:
            kept.building = False
        raise
    if boxes is not None:
        with _LOCK:
            kept.boxes, kept.building = boxes, False
        return boxes
    if wait:
        _rebuild(store, kept)
        return current(store)
    if time.monotonic() >= kept.next_build:
        threading.Thread(target=_rebuild, args=(store, kept), daemon=True).start()
    else:
        with _LOCK:
            kept.building = False
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
    # A write met between the index and the page's rows: once more from the index of
    # the new revision (patched with the write in this call when the log names it).
    for _ in range(2):
        if boxes is None or boxes.stale:
            boxes = current(store)
            if boxes is None:
                return None
        rows = _read(store, boxes, columns, bbox=bbox, where=where, order_by=order_by,
                     limit=limit, offset=offset)  # fmt: skip
        if rows is not False:
            return rows
        boxes.stale = True
    current(store)
    return None


def _read(
    store: Store,
    boxes: PlotBoxes,
    columns: Sequence[str],
    *,
    bbox: Bbox,
    where: Where | None,
    order_by: str,
    limit: int,
    offset: int,
) -> Rows | None | Literal[False]:
    """:func:`page` from ``boxes``; False when a write landed before the rows were read."""
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
    # revision's (revisions only grow); else they are not used (the index of the new
    # revision or the SQL answers). The filters were applied again with the rows, so
    # even then nothing hidden shows.
    if store.revision(["plots"]) != boxes.revision or len(rows) != len(ids):
        return False
    rows.matched = len(found)
    return rows
