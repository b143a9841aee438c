"""An rtree-backed spatial index for in-memory analysis: nearest features and within-distance pairs.

The index is bulk-loaded once (per snapshot) from an array of shapely geometries
in the working CRS.  Queries are vectorised: the rtree answers bounding-box
candidates for all query geometries in one call (``intersection_v`` /
``nearest_v``), and shapely refines the candidates with exact distances in one
array operation.  Nothing loops over features in Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import rtree.index
import shapely
from numpy.typing import ArrayLike

__all__ = ["SpatialIndex"]


class SpatialIndex:
    """Exact nearest and within-distance queries over a fixed set of geometries.

    Parameters
    ----------
    geoms : array-like of shapely geometries
        The indexed features (any type); missing or empty ones are never returned.

    Notes
    -----
    Positions returned by the queries are positions in ``geoms`` (0-based), so
    callers map them back to ids with ``ids[pos]``.  Ties in ``nearest`` go to
    the lowest position, which makes answers deterministic.
    """

    def __init__(self, geoms: Sequence[Any] | np.ndarray) -> None:
        self.geoms = np.asarray(geoms, dtype=object)
        ok = (
            ~(shapely.is_missing(self.geoms) | shapely.is_empty(self.geoms))
            if len(self.geoms)
            else np.zeros(0, bool)
        )
        self._valid = np.flatnonzero(ok)
        self._index: rtree.index.Index | None = None
        if len(self._valid):
            bounds = shapely.bounds(self.geoms[self._valid])
            props = rtree.index.Property()
            props.dimension = 2
            self._index = rtree.index.Index(
                (
                    self._valid.astype(np.int64),
                    np.ascontiguousarray(bounds[:, :2]),
                    np.ascontiguousarray(bounds[:, 2:]),
                ),
                properties=props,
            )

    def __len__(self) -> int:
        return len(self.geoms)

    @property
    def size(self) -> int:
        """How many (non-empty) geometries are indexed."""
        return len(self._valid)

    def candidates(
        self, geoms: ArrayLike, distance: float | np.ndarray = 0.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Pairs ``(query position, feature position)`` whose bounding boxes lie within
        ``distance`` of each other (a superset of the exact answer)."""
        q = np.asarray(geoms, dtype=object)
        if self._index is None or len(q) == 0:
            return np.zeros(0, np.intp), np.zeros(0, np.intp)
        bounds = shapely.bounds(q)
        good = np.isfinite(bounds).all(axis=1)
        dist = np.broadcast_to(np.asarray(distance, dtype=float), (len(q),))
        qpos = np.flatnonzero(good)
        if len(qpos) == 0:
            return np.zeros(0, np.intp), np.zeros(0, np.intp)
        mins = np.ascontiguousarray(bounds[qpos, :2] - dist[qpos, None])
        maxs = np.ascontiguousarray(bounds[qpos, 2:] + dist[qpos, None])
        ids, counts = self._index.intersection_v(mins, maxs)
        left = np.repeat(qpos, np.asarray(counts, dtype=np.intp))
        return left.astype(np.intp), np.asarray(ids, dtype=np.intp)

    def within(
        self, geoms: ArrayLike, distance: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every pair within ``distance`` metres, with the exact distance.

        Returns
        -------
        (left, right, dist) : arrays
            Query positions, feature positions and distances, sorted by query
            then distance then feature position.
        """
        if distance < 0 or not np.isfinite(distance):
            raise ValueError(f"distance must be a finite number >= 0, got {distance!r}")
        q = np.asarray(geoms, dtype=object)
        left, right = self.candidates(q, distance)
        d = shapely.distance(q[left], self.geoms[right])
        keep = d <= distance
        left, right, d = left[keep], right[keep], d[keep]
        order = np.lexsort((right, d, left))
        return left[order], right[order], d[order]

    def nearest(
        self, geoms: ArrayLike, *, max_distance: float | None = None, mask: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The exactly nearest feature of each query geometry.

        Parameters
        ----------
        geoms : array-like of geometries
        max_distance : float, optional
            Features farther than this do not count.
        mask : bool array over the indexed features, optional
            Only features where ``mask`` is True count (e.g. usable assets).

        Returns
        -------
        (pos, dist) : arrays
            Feature position (-1 where none) and distance (inf where none).
        """
        q = np.asarray(geoms, dtype=object)
        n = len(q)
        pos = np.full(n, -1, dtype=np.intp)
        dist = np.full(n, np.inf)
        if n == 0 or self._index is None:
            return pos, dist
        allowed = np.ones(len(self.geoms), bool) if mask is None else np.asarray(mask, bool)
        if not allowed[self._valid].any():
            return pos, dist
        if max_distance is not None:
            left, right, d = self.within(q, max_distance)
            keep = allowed[right]
            left, right, d = left[keep], right[keep], d[keep]
            first = _first_of_groups(left)
            pos[left[first]] = right[first]
            dist[left[first]] = d[first]
            return pos, dist
        # Upper bound: exact distance to the bbox-nearest allowed candidates, then
        # every feature whose bbox lies within that bound is a candidate.
        bounds = shapely.bounds(q)
        good = np.flatnonzero(np.isfinite(bounds).all(axis=1))
        upper = np.full(n, np.inf)
        k = 1
        todo = good
        total = int(allowed[self._valid].sum())
        while len(todo):
            ids, counts = self._index.nearest_v(
                np.ascontiguousarray(bounds[todo, :2]),
                np.ascontiguousarray(bounds[todo, 2:]),
                num_results=k,
            )
            left = np.repeat(todo, np.asarray(counts, dtype=np.intp))
            right = np.asarray(ids, dtype=np.intp)
            keep = allowed[right]
            if keep.any():
                d = shapely.distance(q[left[keep]], self.geoms[right[keep]])
                np.minimum.at(upper, left[keep], d)
            todo = todo[~np.isfinite(upper[todo])]
            if k >= total:
                break
            k = min(k * 8, total)
        left, right = self.candidates(q[good], upper[good])
        left = good[left]
        keep = allowed[right]
        left, right = left[keep], right[keep]
        d = shapely.distance(q[left], self.geoms[right])
        order = np.lexsort((right, d, left))
        left, right, d = left[order], right[order], d[order]
        first = _first_of_groups(left)
        pos[left[first]] = right[first]
        dist[left[first]] = d[first]
        return pos, dist


def _first_of_groups(sorted_keys: np.ndarray) -> np.ndarray:
    """Positions of the first element of each run of equal keys in a sorted array."""
    if len(sorted_keys) == 0:
        return np.zeros(0, np.intp)
    return np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
