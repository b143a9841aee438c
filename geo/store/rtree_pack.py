"""A packed SQLite R*Tree written straight into its shadow tables (bulk loads)."""

from __future__ import annotations

import sqlite3

import numpy as np

# SQLite's R*Tree (ext/rtree/rtree.c) keeps each node as a blob of the tree's node size:
# 2 bytes depth (the root only: the tree's height), 2 bytes cell count, then cells of an
# 8-byte id and (min, max) per dimension as 4-byte floats, all big-endian. ``<name>_rowid``
# maps each entry to its leaf, ``<name>_parent`` each node but the root to its parent.
_CELL = np.dtype([("id", ">i8"), ("box", ">f4", (4,))])
# Entries a node may hold at most, whatever its size (RTREE_MAXCELLS in rtree.c).
_MAX_CELLS = 51
# Below this many new entries per existing one, inserting through the R*Tree is cheaper
# than rebuilding it (an insert costs ~15 µs, a rebuild ~2 µs per entry).
REBUILD_RATIO = 0.15


def float32_out(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bounds as 4-byte floats rounded outwards exactly as the R*Tree rounds what it is
    given (rtreeValueDown/rtreeValueUp: a value the cast moved inwards is scaled by
    1 ∓ 2⁻²³ and cast again), so a packed tree stores what inserts would have stored."""
    towards, away = 1.0 - 1.0 / 8388608.0, 1.0 + 1.0 / 8388608.0
    lo32 = lo.astype(np.float32)
    down = lo32.astype(np.float64) > lo
    lo32[down] = (lo[down] * np.where(lo[down] < 0, away, towards)).astype(np.float32)
    hi32 = hi.astype(np.float32)
    up = hi32.astype(np.float64) < hi
    hi32[up] = (hi[up] * np.where(hi[up] < 0, towards, away)).astype(np.float32)
    return lo32, hi32


def _str_order(boxes: np.ndarray, cap: int) -> np.ndarray:
    """Sort-Tile-Recursive order of ``boxes`` (minx, maxx, miny, maxy): vertical slices
    by centre x, each sorted by centre y, so consecutive runs of ``cap`` are compact."""
    n = len(boxes)
    pages = -(-n // cap)
    slices = max(1, int(np.ceil(np.sqrt(pages))))
    cx = boxes[:, 0].astype(np.float64) + boxes[:, 1]
    cy = boxes[:, 2].astype(np.float64) + boxes[:, 3]
    by_x = np.argsort(cx, kind="stable")
    slab = np.empty(n, dtype=np.int64)
    slab[by_x] = np.arange(n) // (slices * cap)
    return np.lexsort((cy, slab))


def _level(ids: np.ndarray, boxes: np.ndarray, cap: int) -> tuple[list[np.ndarray], np.ndarray]:
    """One level of nodes over ``ids``/``boxes``: each node's cells and the nodes' boxes."""
    order = _str_order(boxes, cap)
    cells = np.empty(len(ids), dtype=_CELL)
    cells["id"] = ids[order]
    cells["box"] = boxes[order]
    starts = np.arange(0, len(ids), cap)
    sorted_boxes = boxes[order]
    node_boxes = np.column_stack(
        [
            np.minimum.reduceat(sorted_boxes[:, 0], starts),
            np.maximum.reduceat(sorted_boxes[:, 1], starts),
            np.minimum.reduceat(sorted_boxes[:, 2], starts),
            np.maximum.reduceat(sorted_boxes[:, 3], starts),
        ]
    )
    return [cells[s : s + cap] for s in starts], node_boxes


def _node_size(conn: sqlite3.Connection, quoted_node: str) -> int:
    row = conn.execute(f"SELECT length(data) FROM {quoted_node} WHERE nodeno = 1").fetchone()
    if row is None or row[0] is None:
        raise ValueError(f"{quoted_node} has no root node")
    return int(row[0])


def pack_rtree(conn: sqlite3.Connection, rtree: str, ids: np.ndarray, bounds: np.ndarray) -> None:
    """Replace the content of the 2-D R*Tree ``rtree`` by a packed tree of ``ids``.

    Parameters
    ----------
    conn : sqlite3.Connection
        Inside the caller's transaction (a rollback undoes the rebuild).
    rtree : str
        The R*Tree virtual table (columns id, minx, maxx, miny, maxy, as GeoPackage
        spatial indexes have them).
    ids : array of int
        The entries' ids (feature ids), unique.
    bounds : array (n, 4)
        Their (minx, miny, maxx, maxy), as ``shapely.bounds`` gives them; no NaN.

    Notes
    -----
    Builds the tree as SQLite's bulk loaders do (GDAL's for GeoPackage, among them):
    entries sorted tile by tile, nodes filled to capacity, written to ``<rtree>_node``,
    ``<rtree>_rowid`` and ``<rtree>_parent``. ``rtreecheck()`` accepts the result, and
    later inserts and deletes go through the R*Tree as usual.
    """
    node_t, rowid_t, parent_t = (_quote(f"{rtree}_{part}") for part in ("node", "rowid", "parent"))
    size = _node_size(conn, node_t)
    cap = min(_MAX_CELLS, (size - 4) // _CELL.itemsize)
    ids = np.asarray(ids, dtype=np.int64)
    bounds = np.asarray(bounds, dtype=np.float64).reshape(-1, 4)
    if len(ids) != len(bounds) or (len(ids) and np.isnan(bounds).any()):
        raise ValueError("pack_rtree takes one finite box per id")
    minx, maxx = float32_out(bounds[:, 0], bounds[:, 2])
    miny, maxy = float32_out(bounds[:, 1], bounds[:, 3])
    boxes = np.column_stack([minx, maxx, miny, maxy])
    # Levels from the leaves up; node numbers are given from the root (1) down.
    levels: list[list[np.ndarray]] = [[np.empty(0, dtype=_CELL)]] if not len(ids) else []
    level_ids, level_boxes = ids, boxes
    while not levels or len(levels[-1]) > 1:
        nodes, level_boxes = _level(level_ids, level_boxes, cap)
        levels.append(nodes)
        level_ids = np.arange(len(nodes), dtype=np.int64)  # the next level's children
    numbers: list[np.ndarray] = []
    next_no = 1
    for nodes in reversed(levels):
        numbers.insert(0, np.arange(next_no, next_no + len(nodes), dtype=np.int64))
        next_no += len(nodes)
    # The cells of level k+1 point at the nodes of level k, in the order built there.
    for k in range(1, len(levels)):
        _renumber(levels[k], numbers[k - 1])
    height = len(levels) - 1
    blobs: list[tuple[int, bytes]] = []
    parents: list[tuple[int, int]] = []
    for k, nodes in enumerate(levels):
        for no, cells in zip(numbers[k].tolist(), nodes):
            head = np.array([height if no == 1 else 0, len(cells)], dtype=">u2").tobytes()
            body = head + cells.tobytes()
            blobs.append((no, body + bytes(size - len(body))))
            if k > 0:
                parents += [(int(child), no) for child in cells["id"].tolist()]
    leaf_numbers = np.repeat(numbers[0], [len(c) for c in levels[0]])
    leaf_ids = np.concatenate([c["id"] for c in levels[0]]) if len(ids) else ids
    by_id = np.argsort(leaf_ids, kind="stable")  # rowids in order: B-tree appends
    leaf_rows = zip(leaf_ids[by_id].tolist(), leaf_numbers[by_id].tolist())
    conn.execute(f"DELETE FROM {rowid_t}")
    conn.execute(f"DELETE FROM {parent_t}")
    conn.execute(f"DELETE FROM {node_t}")
    conn.executemany(f"INSERT INTO {node_t} (nodeno, data) VALUES (?, ?)", blobs)
    conn.executemany(f"INSERT INTO {parent_t} (nodeno, parentnode) VALUES (?, ?)", parents)
    conn.executemany(f"INSERT INTO {rowid_t} (rowid, nodeno) VALUES (?, ?)", leaf_rows)


def _renumber(nodes: list[np.ndarray], child_numbers: np.ndarray) -> None:
    """Point the cells of ``nodes`` at their children's numbers (cells hold, in build
    order, the index of the child within the level below)."""
    for cells in nodes:
        cells["id"] = child_numbers[cells["id"]]


def add_entries(conn: sqlite3.Connection, rtree: str, ids: np.ndarray, bounds: np.ndarray) -> None:
    """Add ``ids`` with their ``bounds`` (minx, miny, maxx, maxy) to the 2-D R*Tree
    ``rtree``: a packed tree rebuilt over the old and new entries when the new ones are
    many (:data:`REBUILD_RATIO`), else inserted one by one through the R*Tree."""
    quoted, rowid_t = _quote(rtree), _quote(f"{rtree}_rowid")
    held = conn.execute(f"SELECT count(*) FROM {rowid_t}").fetchone()[0]
    if len(ids) < REBUILD_RATIO * held:
        conn.executemany(
            f"INSERT INTO {quoted} (id, minx, maxx, miny, maxy) VALUES (?, ?, ?, ?, ?)",
            zip(ids.tolist(), *(bounds[:, i].tolist() for i in (0, 2, 1, 3))),
        )
        return
    old = np.array(
        conn.execute(f"SELECT id, minx, miny, maxx, maxy FROM {quoted}").fetchall(),
        dtype=np.float64,
    ).reshape(-1, 5)
    pack_rtree(
        conn,
        rtree,
        np.concatenate([old[:, 0].astype(np.int64), ids]),
        np.concatenate([old[:, 1:], bounds]),
    )


def _quote(name: str) -> str:
    """An identifier from the schema (never from a request), quoted for SQLite."""
    return '"' + name.replace('"', '""') + '"'
