"""A spatial index for in-memory analysis: exact nearest features and within-distance pairs.

The index is bulk-loaded once (per snapshot) from an array of shapely geometries
in the working CRS.  Queries are vectorised over GEOS' STRtree: one call answers
every query geometry with exact distances (``dwithin`` pairs, nearest neighbours
by GEOS' branch-and-bound search), so nothing loops over features in Python and no
bounding-box candidate list is refined afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
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
        # STRtree numbers the items by their position in the array it is given.
        self._tree = shapely.STRtree(self.geoms) if len(self._valid) else None

    def __len__(self) -> int:
        return len(self.geoms)

    @property
    def size(self) -> int:
        """How many (non-empty) geometries are indexed."""
        return len(self._valid)

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
        if self._tree is None or len(q) == 0:
            return np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros(0)
        left, right = self._tree.query(q, predicate="dwithin", distance=float(distance))
        left, right = left.astype(np.intp), right.astype(np.intp)
        d = shapely.distance(q[left], self.geoms[right])
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
        if n == 0 or self._tree is None:
            return pos, dist
        allowed = np.ones(len(self.geoms), bool) if mask is None else np.asarray(mask, bool)
        subset = self._valid[allowed[self._valid]]
        if not len(subset):
            return pos, dist
        if max_distance is not None:
            left, right, d = self.within(q, max_distance)
            keep = allowed[right]
            left, right, d = left[keep], right[keep], d[keep]
        else:
            # A tree of the allowed features only (the mask changes per scenario; the
            # indexed set is small beside the queries), searched by GEOS.
            tree = (
                self._tree
                if len(subset) == len(self._valid)
                else shapely.STRtree(self.geoms[subset])
            )
            good = np.flatnonzero(~(shapely.is_missing(q) | shapely.is_empty(q)))
            pairs, d = tree.query_nearest(q[good], all_matches=True, return_distance=True)
            left = good[pairs[0]]
            right = pairs[1] if tree is self._tree else subset[pairs[1]]
            order = np.lexsort((right, left))  # ties (equal distances): lowest position
            left, right, d = left[order], right[order].astype(np.intp), d[order]
        first = _first_of_groups(left)
        pos[left[first]] = right[first]
        dist[left[first]] = d[first]
        return pos, dist


def _first_of_groups(sorted_keys: np.ndarray) -> np.ndarray:
    """Positions of the first element of each run of equal keys in a sorted array."""
    if len(sorted_keys) == 0:
        return np.zeros(0, np.intp)
    return np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
