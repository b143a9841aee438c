"""Candidate-segment geometry for corridor graphs: lattices, densified boundaries, node merging."""

from __future__ import annotations

import numpy as np
import shapely

__all__ = [
    "square_lattice",
    "boundary_segments",
    "merge_close",
    "near_pairs",
    "inside_any",
    "crosses_interior",
]


def square_lattice(
    minx: float, miny: float, maxx: float, maxy: float, spacing: float
) -> tuple[np.ndarray, np.ndarray]:
    """Square lattice nodes and their 8-neighbour edges."""
    xs = np.arange(minx, maxx + spacing / 2, spacing)
    ys = np.arange(miny, maxy + spacing / 2, spacing)
    gx, gy = np.meshgrid(xs, ys)
    nx, ny = len(xs), len(ys)
    ids = np.arange(nx * ny).reshape(ny, nx)
    pairs = [
        (ids[:, :-1], ids[:, 1:]),
        (ids[:-1, :], ids[1:, :]),
        (ids[:-1, :-1], ids[1:, 1:]),
        (ids[:-1, 1:], ids[1:, :-1]),
    ]
    edges = np.concatenate([np.stack([a.ravel(), b.ravel()], axis=1) for a, b in pairs])
    return np.stack([gx.ravel(), gy.ravel()], axis=1), edges


def boundary_segments(polygons: np.ndarray, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and edges along the plot boundaries, densified at the spacing."""
    if len(polygons) == 0:
        return np.zeros((0, 2)), np.zeros((0, 2), np.intp)
    rings = shapely.segmentize(shapely.boundary(polygons), spacing)
    coords, ring = shapely.get_coordinates(rings, return_index=True)
    same = ring[1:] == ring[:-1]
    a = np.flatnonzero(same)
    return coords, np.stack([a, a + 1], axis=1)


def merge_close(
    xy: np.ndarray, edges: np.ndarray, tol: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Merge nodes closer than ``tol`` (shared plot corners, boundary points on lattice points),
    keeping the first of each cluster, so lattice nodes keep their positions."""
    key = np.round(xy / tol).astype(np.int64)
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return xy[np.sort(first)], rank[inverse][edges]


def near_pairs(points: np.ndarray, radius: float) -> np.ndarray:
    """Index pairs (i < j) of points within ``radius`` of each other."""
    a, b = shapely.STRtree(points).query(points, predicate="dwithin", distance=radius)
    keep = a < b
    return np.stack([a[keep], b[keep]], axis=1)


def inside_any(geoms: np.ndarray, polygons: np.ndarray, *, strict: bool = False) -> np.ndarray:
    """Whether each geometry lies inside (``strict``: in the interior of) any polygon."""
    out = np.zeros(len(geoms), bool)
    if len(polygons) == 0 or len(geoms) == 0:
        return out
    g, p = shapely.STRtree(polygons).query(geoms, predicate="intersects")
    if strict:
        hit = shapely.contains_properly(polygons[p], geoms[g])
        g = g[hit]
    else:
        g = g[~shapely.touches(geoms[g], polygons[p])]
    out[g] = True
    return out


def crosses_interior(lines: np.ndarray, polygons: np.ndarray) -> np.ndarray:
    """Whether each line enters the interior of any polygon (touching its edge is fine)."""
    return inside_any(lines, polygons)
