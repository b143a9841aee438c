"""WKB: the rings (or lines, or points) of a column of geometries as flat coordinate arrays,
read straight from the WKB bytes by numpy, one step per ring for every geometry at once."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import shapely

# ISO WKB type codes of the 2-D types a layer holds, single and multi.
_CODES = {"Point": (1, 4), "LineString": (2, 5), "Polygon": (3, 6)}


@dataclass(frozen=True)
class Rings:
    """Every ring (a polygon's boundary, a line, or a lone point) of a column of geometries,
    in row order then file order: ring ``r`` is ``coords[offsets[r]:offsets[r + 1]]`` and
    belongs to row ``row[r]``; ``exterior[r]`` marks a polygon's first ring. Rows with
    no geometry (null or empty) have no ring."""

    coords: np.ndarray  # (points, 2) float64
    offsets: np.ndarray  # (rings + 1,) int64
    row: np.ndarray  # (rings,) int64, non-decreasing
    exterior: np.ndarray  # (rings,) bool

    def per_row(self, rows: int) -> tuple[np.ndarray, np.ndarray]:
        """Rings and points of each of ``rows`` rows."""
        sizes = np.diff(self.offsets)
        return (
            np.bincount(self.row, minlength=rows).astype(np.int64),
            np.bincount(self.row, weights=sizes, minlength=rows).astype(np.int64),
        )


_NONE = Rings(np.zeros((0, 2)), np.zeros(1, np.int64), np.zeros(0, np.int64), np.zeros(0, bool))


def rings(column: pa.ChunkedArray | pa.Array, geometry: str) -> Rings:
    """The rings of a WKB column of a ``geometry`` layer (``Point``, ``LineString`` or
    ``Polygon``; the multi type too). Little-endian 2-D WKB (what GDAL and shapely write)
    is read directly; anything else (Z, M, big-endian) goes through shapely.

    Raises
    ------
    ValueError
        For a geometry of another type than the layer's.
    """
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    fast = _direct(array, geometry)
    return fast if fast is not None else _through_shapely(array, geometry)


def _u32(data: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The little-endian uint32 at each byte position ``at`` (read as aligned words, one
    pass per position modulo 4)."""
    return _items(data, at, 4, "<u4").astype(np.int64)


def _items(data: np.ndarray, at: np.ndarray, size: int, dtype: str) -> np.ndarray:
    """The ``size``-byte item at each of the byte positions ``at``: ``data`` seen as
    overlapping ``size``-byte records one byte apart, so each item is one index (a byte
    gather would take ``size`` indices per item)."""
    if len(data) < size:
        return np.empty(0, dtype=dtype)
    records = np.ndarray((len(data) - size + 1,), dtype=f"V{size}", buffer=data, strides=(1,))
    items: np.ndarray = records[at].view(dtype)
    return items


def _direct(array: pa.Array, geometry: str) -> Rings | None:
    """Walk the WKB of every geometry in lockstep: a step reads one polygon header or one
    ring of each geometry that has one left. None when a geometry needs shapely."""
    single, multi = _CODES[geometry]
    valid = np.asarray(array.is_valid())
    buffers = array.buffers()
    wide = pa.types.is_large_binary(array.type)
    offsets = np.frombuffer(buffers[1], dtype=np.int64 if wide else np.int32)
    offsets = offsets[array.offset : array.offset + len(array) + 1].astype(np.int64)
    data = (
        np.frombuffer(buffers[2], dtype=np.uint8)
        if buffers[2] is not None
        else np.zeros(0, np.uint8)
    )
    present = np.flatnonzero(valid & (np.diff(offsets) >= 5))
    start, end = offsets[present], offsets[present + 1]
    if len(present) and (data[start] != 1).any():
        return None  # big-endian
    kind = _u32(data, start + 1) if len(present) else np.zeros(0, np.int64)
    if not np.isin(kind, (single, multi)).all():
        return None  # Z, M, or another type: shapely says which
    if geometry == "Point":
        return _points(data, present, start, end, kind)
    is_multi = kind == multi
    cursor = np.where(is_multi, start + 9, start)
    parts_left = np.where(is_multi, _u32(data, start + 5), 1)
    rings_left = np.zeros(len(present), dtype=np.int64)
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    first = np.zeros(len(present), dtype=bool)
    active = np.flatnonzero(parts_left > 0)
    while len(active):
        header = active[rings_left[active] == 0]
        if len(header):
            at = cursor[header]
            if (
                (at + 9 > end[header]).any()
                or (data[at] != 1).any()
                or (_u32(data, at + 1) != single).any()
            ):
                return None
            if geometry == "Polygon":
                rings_left[header] = _u32(data, at + 5)
                cursor[header] = at + 9
            else:  # a line: its points follow its 5-byte header, like one ring
                rings_left[header] = 1
                cursor[header] = at + 5
            parts_left[header] -= 1
            first[header] = True
        ring = active[rings_left[active] > 0]
        if len(ring):
            at = cursor[ring]
            if (at + 4 > end[ring]).any():
                return None  # malformed: shapely says where
            count = _u32(data, at)
            found.append((ring, at + 4, count, first[ring].copy()))
            cursor[ring] = at + 4 + 16 * count
            rings_left[ring] -= 1
            first[ring] = False
        active = np.flatnonzero((parts_left > 0) | (rings_left > 0))
    if (cursor != end).any():
        return None
    return _gather(data, present, found)


def _points(
    data: np.ndarray, present: np.ndarray, start: np.ndarray, end: np.ndarray, kind: np.ndarray
) -> Rings | None:
    if (kind != 1).any() or (end - start != 21).any():
        return None  # multipoints (shapely names them), or Z/M
    n = len(present)
    found = [(np.arange(n), start + 5, np.ones(n, np.int64), np.zeros(n, bool))]
    out = _gather(data, present, found)
    return None if np.isnan(out.coords).any() else out  # POINT EMPTY: shapely drops it


def _gather(
    data: np.ndarray,
    present: np.ndarray,
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
) -> Rings:
    """Rings found step by step, put in row order, their coordinates cut out of ``data``."""
    if not found:
        return _NONE
    owner = np.concatenate([f[0] for f in found])
    at = np.concatenate([f[1] for f in found])
    count = np.concatenate([f[2] for f in found])
    exterior = np.concatenate([f[3] for f in found])
    kept = count > 0  # a ring without points (degenerate WKB) adds nothing to any shape
    owner, at, count, exterior = owner[kept], at[kept], count[kept], exterior[kept]
    if len(found) > 1:  # steps interleave rows; within a row, steps are in file order
        order = np.argsort(owner, kind="stable")
        owner, at, count, exterior = owner[order], at[order], count[order], exterior[order]
    # Each point is 16 bytes at ring start + 16 k: gathered as 16-byte items.
    total = int(count.sum())
    before = np.repeat(np.cumsum(count) - count, count)
    point_at = np.repeat(at, count) + 16 * (np.arange(total) - before)
    coords = _items(data, point_at, 16, "<c16").view("<f8").reshape(-1, 2)
    offsets = np.concatenate(([0], np.cumsum(count)))
    return Rings(coords, offsets, present[owner], exterior)


def _through_shapely(array: pa.Array, geometry: str) -> Rings:
    geoms = shapely.from_wkb(array.to_numpy(zero_copy_only=False))
    present = np.flatnonzero(~(shapely.is_missing(geoms) | shapely.is_empty(geoms)))
    if not len(present):
        return _NONE
    gtype, coords, offsets = shapely.to_ragged_array(geoms[present], include_z=False)
    name = gtype.name.replace("MULTI", "")
    if name != geometry.upper() or (geometry == "Point" and gtype.name != "POINT"):
        raise ValueError(f"a {geometry} shapefile cannot hold {gtype.name.lower()} geometries")
    if geometry == "Point":
        n = len(present)
        return Rings(
            np.ascontiguousarray(coords[:, :2]), np.arange(n + 1), present, np.zeros(n, bool)
        )
    ring_offsets = np.asarray(offsets[0], dtype=np.int64)
    bounds = np.arange(len(ring_offsets))
    for level in offsets[1:]:  # rings -> polygons -> multipolygons
        bounds = bounds[level]
    per_row = np.diff(bounds)
    exterior = np.zeros(len(ring_offsets) - 1, dtype=bool)
    if geometry == "Polygon":
        polygon_rings = np.asarray(offsets[1])
        exterior[polygon_rings[:-1][np.diff(polygon_rings) > 0]] = True
    row = np.repeat(present, per_row)
    return Rings(np.ascontiguousarray(coords[:, :2], dtype=np.float64), ring_offsets, row, exterior)
